/**
 * Entry names made safe: absolute roots stripped, `.` and empty parts dropped, `..` resolved
 * lexically. A name that climbs above the root has no safe meaning and is refused (undefined).
 * Returns the path components; [] is the root itself.
 */
export function normalizeEntryPath(name: string): string[] | undefined {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    if (part.includes('\0')) return undefined;
    parts.push(part);
  }
  return parts;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export type WhiteoutKind =
  | { kind: 'none' }
  | { kind: 'opaque' }
  | { kind: 'remove'; name: string }
  /** `.wh.` alone, `.wh..`, `.wh...`, or other `.wh..wh.*` (aufs internals): never applied. */
  | { kind: 'invalid' };

/** Classifies the last component of a normalized entry path by the OCI whiteout rules. */
export function whiteoutOf(baseName: string): WhiteoutKind {
  if (!baseName.startsWith(WHITEOUT_PREFIX)) return { kind: 'none' };
  if (baseName === OPAQUE_WHITEOUT) return { kind: 'opaque' };
  const name = baseName.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..' || name.startsWith(WHITEOUT_PREFIX)) return { kind: 'invalid' };
  return { kind: 'remove', name };
}
