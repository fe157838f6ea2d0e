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

/** Blobs up to this size go in one PUT; larger ones in PATCH chunks. */
export const MONOLITHIC_MAX = 16 * 1024 * 1024;
const DEFAULT_CHUNK = 16 * 1024 * 1024;

/** An upload session the registry opened (or a blob it mounted from another repository instead). */
export interface UploadSession {
  mounted: boolean;
  location: URL;
  /** The registry's OCI-Chunk-Min-Length, or 0. */
  minChunk: number;
}

/**
 * Starts an upload; with `mountFrom`, asks for a cross-repository mount first (201: the blob
 * is there, nothing to send; 202: the registry declined and opened an upload instead).
 */
export async function startUpload(client: RegistryClient, mountFrom?: { digest: Digest; repository: string }): Promise<UploadSession> {
  const repo = client.reference.repository;
  const query = mountFrom ? `?mount=${encodeURIComponent(mountFrom.digest)}&from=${encodeURIComponent(mountFrom.repository)}` : '';
  const scopes = mountFrom ? [...pushScopes(client), `repository:${mountFrom.repository}:pull`] : pushScopes(client);
  const res = await client.transport.request({ method: 'POST', path: `/v2/${repo}/blobs/uploads/${query}`, scopes, expect: [201, 202] });
  await res.body.dump();
  const location = headerValue(res.headers, 'location');
  if (!location) throw new KrgoError('REGISTRY_ERROR', 'the registry answered an upload request without a Location');
  const minChunk = Number(headerValue(res.headers, 'oci-chunk-min-length') ?? 0);
  return { mounted: res.status === 201, location: new URL(location, res.url), minChunk: Number.isSafeInteger(minChunk) && minChunk > 0 ? minChunk : 0 };
}

/** Gathers a stream into pieces of exactly `size` bytes (the last one shorter). */
async function* pieces(source: AsyncIterable<Buffer> | Iterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  for await (const chunk of source) {
    let rest = chunk;
    while (heldBytes + rest.length >= size) {
      const take = size - heldBytes;
      held.push(rest.subarray(0, take));
      yield Buffer.concat(held);
      rest = rest.subarray(take);
      held = [];
      heldBytes = 0;
    }
    if (rest.length) {
      held.push(rest);
      heldBytes += rest.length;
    }
  }
  if (heldBytes) yield Buffer.concat(held);
}

/**
 * Sends a blob into an open upload: one PUT for small blobs, else PATCH chunks of at least
 * the registry's minimum (each answered with the next Location), then the closing PUT.
 * `onProgress` hears the bytes sent so far.
 */
export async function sendBlob(client: RegistryClient, session: UploadSession, digest: Digest, size: number, data: AsyncIterable<Buffer> | Iterable<Buffer>, onProgress?: (sent: number) => void): Promise<void> {
  const scopes = pushScopes(client);
  let location = session.location;
  const finish = async (body: Buffer) => {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await client.transport.request({
      method: 'PUT',
      path: url.toString(),
      scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
      body,
      expect: [201],
    });
    await res.body.dump();
  };
  // The minimum chunk length binds PATCH chunks only; a monolithic PUT is always allowed.
  if (size <= MONOLITHIC_MAX) {
    const parts: Buffer[] = [];
    for await (const chunk of data) parts.push(chunk);
    const whole = Buffer.concat(parts);
    await finish(whole);
    onProgress?.(whole.length);
    return;
  }
  let sent = 0;
  for await (const chunk of pieces(data, Math.max(DEFAULT_CHUNK, session.minChunk))) {
    const res = await client.transport.request({
      method: 'PATCH',
      path: location.toString(),
      scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${sent}-${sent + chunk.length - 1}`, 'content-length': String(chunk.length) },
      body: chunk,
      expect: [202],
    });
    await res.body.dump();
    const next = headerValue(res.headers, 'location');
    if (next) location = new URL(next, res.url);
    sent += chunk.length;
    onProgress?.(sent);
  }
  await finish(Buffer.alloc(0));
}

/** Uploads a blob held in memory (config, small artifacts), unless the registry has it. */
export async function pushBlob(client: RegistryClient, data: Buffer): Promise<Digest> {
  const digest = sha256Of(data);
  if (await blobExists(client, digest)) return digest;
  await sendBlob(client, await startUpload(client), digest, data.length, [data]);
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
