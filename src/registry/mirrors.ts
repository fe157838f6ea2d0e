import { readFileSync } from 'node:fs';
import { KrgoError } from '../errors.js';
import type { ImageReference } from './reference.js';

/** One mirror of a registry (or of a namespace of it): where to try first, how to reach it. */
export interface Mirror {
  /** host[:port][/path]: the mirror's repository is path/ + what follows the matched prefix. */
  location: string;
  insecure: boolean;
}

interface RegistryEntry {
  prefix: string;
  mirrors: Mirror[];
}

/** containers-registries.conf(5): $CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf. */
export function registriesConfPath(): string {
  return process.env['CONTAINERS_REGISTRIES_CONF'] || '/etc/containers/registries.conf';
}

/** The file's text when it has [[registry]] tables (it may name mirrors); undefined when it is missing or has none. */
function registryTables(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return /^\s*\[\[registry\]\]/m.test(text) ? text : undefined;
}

/** Whether registries.conf may name mirrors. Synchronous: when it cannot, a caller goes on at once. */
export function mayNameMirrors(path = registriesConfPath()): boolean {
  return registryTables(path) !== undefined;
}

async function readEntries(path: string): Promise<RegistryEntry[]> {
  // Most machines have no registries.conf, or one with no [[registry]] table: no parser loaded then.
  const text = registryTables(path);
  if (text === undefined) return [];
  let doc: Record<string, unknown>;
  try {
    const { parse } = await import('smol-toml');
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new KrgoError('USAGE', `${path} is not valid TOML: ${(err as Error).message}`);
  }
  const registries = Array.isArray(doc['registry']) ? (doc['registry'] as Record<string, unknown>[]) : [];
  return registries.flatMap((r) => {
    const location = typeof r['location'] === 'string' ? r['location'] : undefined;
    const prefix = typeof r['prefix'] === 'string' ? r['prefix'] : location;
    if (!prefix) return [];
    const mirrors = (Array.isArray(r['mirror']) ? (r['mirror'] as Record<string, unknown>[]) : [])
      .filter((m) => typeof m['location'] === 'string')
      .map((m) => ({ location: (m['location'] as string).replace(/\/+$/, ''), insecure: m['insecure'] === true }));
    return [{ prefix: prefix.replace(/\/+$/, ''), mirrors }];
  });
}

/** Where an image may be pulled from instead of its registry, in order (the registry itself comes after them). */
export async function mirrorsFor(reference: ImageReference, path = registriesConfPath()): Promise<{ registry: string; repository: string; insecure: boolean }[]> {
  const name = `${reference.registry}/${reference.repository}`;
  // The longest prefix that matches at a path boundary, as containers/image does.
  const entry = (await readEntries(path))
    .filter((e) => name === e.prefix || name.startsWith(`${e.prefix}/`))
    .sort((a, b) => b.prefix.length - a.prefix.length)[0];
  if (!entry) return [];
  const rest = name.slice(entry.prefix.length).replace(/^\//, '');
  return entry.mirrors.map((m) => {
    const [registry, ...path] = m.location.split('/');
    return { registry: registry!, repository: [...path, rest].filter(Boolean).join('/'), insecure: m.insecure };
  });
}
