import { KrgoError } from '../errors.js';
import { sha256Of, type Digest } from '../digest.js';
import type { RegistryClient } from './client.js';
import { headerValue } from './transport.js';

/** Scopes for writing to the client's repository. */
export function pushScopes(client: RegistryClient): string[] {
  return [`repository:${client.reference.repository}:pull,push`];
}

export async function blobExists(client: RegistryClient, digest: Digest): Promise<boolean> {
  const res = await client.transport.request({
    method: 'HEAD',
    path: `/v2/${client.reference.repository}/blobs/${digest}`,
    scopes: pushScopes(client),
    expect: [200, 404],
  });
  await res.body.dump();
  return res.status === 200;
}

/** Uploads a blob held in memory (monolithic POST then PUT), unless the registry has it. */
export async function pushBlob(client: RegistryClient, data: Buffer): Promise<Digest> {
  const digest = sha256Of(data);
  if (await blobExists(client, digest)) return digest;
  const repo = client.reference.repository;
  const start = await client.transport.request({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, scopes: pushScopes(client), expect: [202] });
  await start.body.dump();
  const location = headerValue(start.headers, 'location');
  if (!location) throw new KrgoError('REGISTRY_ERROR', 'the registry started an upload without a Location');
  const url = new URL(location, start.url);
  url.searchParams.set('digest', digest);
  const put = await client.transport.request({
    method: 'PUT',
    path: url.toString(),
    scopes: pushScopes(client),
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    body: data,
    expect: [201],
  });
  await put.body.dump();
  return digest;
}

/** PUTs a manifest (or index) under a tag or its digest; returns its digest. */
export async function putManifest(client: RegistryClient, reference: string, mediaType: string, body: Buffer): Promise<Digest> {
  const res = await client.transport.request({
    method: 'PUT',
    path: `/v2/${client.reference.repository}/manifests/${reference}`,
    scopes: pushScopes(client),
    headers: { 'content-type': mediaType },
    body,
    expect: [201],
  });
  await res.body.dump();
  return sha256Of(body);
}
