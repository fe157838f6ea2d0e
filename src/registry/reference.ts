import { KrgoError } from '../errors.js';
import { parseDigest, type Digest } from '../digest.js';

export const DOCKER_HUB = 'docker.io';

/** A parsed image reference: `debian`, `user/img:tag`, `host:port/path/img@sha256:...`. */
export interface ImageReference {
  /** Registry as the user names it (docker.io for Docker Hub). */
  readonly registry: string;
  /** Repository path, with `library/` added for official Docker Hub images. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;

export function parseReference(input: string): ImageReference {
  const bad = (why: string): never => {
    throw new KrgoError('BAD_REFERENCE', `invalid image reference ${JSON.stringify(input)}: ${why}`);
  };
  if (!input || input.length > 512) bad('empty or too long');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch {
      bad('the part after @ is not a valid digest');
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(`tag ${JSON.stringify(tag)} is not valid`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    if (!HOST.test(first)) bad(`registry host ${JSON.stringify(first)} is not valid`);
    registry = first;
    parts.shift();
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    bad('repository names are lowercase letters, digits and separators (. _ __ -) between slashes');
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  if (!tag && !digest) tag = 'latest';
  return { registry, repository: parts.join('/'), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The tag or digest to ask the registry for; a digest wins when both are given. */
export function referenceTarget(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

export function formatReference(ref: ImageReference): string {
  const base = `${ref.registry}/${ref.repository}`;
  return `${base}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Host the API is served from: Docker Hub answers at registry-1.docker.io. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

/** Where a registry's API is served: HTTPS, except loopback registries and insecure ones (plain HTTP, as Docker does). */
export function registryOrigin(registry: string, insecure: boolean): URL {
  const plain = isLoopbackHost(registry) || insecure;
  return new URL(`${plain ? 'http' : 'https'}://${apiHost(registry)}`);
}

/** Loopback registries use plain HTTP by default, as Docker does. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
