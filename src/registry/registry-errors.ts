import { KrgoError } from '../errors.js';

/** Turns an unexpected registry status and its OCI error body into a typed error. */
export function registryErrorFor(status: number, bodyText: string, what: string): KrgoError {
  let detail = '';
  try {
    const parsed = JSON.parse(bodyText) as { errors?: { code?: string; message?: string }[] };
    detail = (parsed.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    detail = bodyText.slice(0, 200).trim();
  }
  const suffix = detail ? ` — ${detail}` : '';
  if (status === 404) return new KrgoError('NOT_FOUND', `${what}: not found${suffix}`);
  if (status === 401 || status === 403) return new KrgoError('UNAUTHORIZED', `${what}: access denied (HTTP ${status})${suffix}`);
  return new KrgoError('REGISTRY_ERROR', `${what}: HTTP ${status}${suffix}`);
}
