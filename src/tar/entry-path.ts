import { nameByteLength } from './name-bytes.js';

/** Linux's NAME_MAX and PATH_MAX: longer names fail in every system call, so they never reach one. */
export const NAME_MAX_BYTES = 255;
export const PATH_MAX_BYTES = 4095;

/**
 * Why an entry's names cannot be used on a host, or undefined when they can: a NUL byte (the
 * kernel would cut the name there), a component longer than NAME_MAX, a path or link target
 * longer than PATH_MAX.
 */
export function entryNameProblem(path: string, linkname: string): string | undefined {
  if (path.includes('\0')) return 'its path contains a NUL byte';
  if (linkname.includes('\0')) return 'its link target contains a NUL byte';
  // A UTF-16 unit is at most 3 bytes on the host (an escaped byte is 1): short names, nearly
  // all of them, cannot be too long, and are not measured (this runs for every entry of a mount).
  if (path.length * 3 <= NAME_MAX_BYTES && linkname.length * 3 <= PATH_MAX_BYTES) return undefined;
  if (nameByteLength(path) > PATH_MAX_BYTES) return `its path is longer than ${PATH_MAX_BYTES} bytes`;
  if (nameByteLength(linkname) > PATH_MAX_BYTES) return `its link target is longer than ${PATH_MAX_BYTES} bytes`;
  for (const part of path.split('/')) if (nameByteLength(part) > NAME_MAX_BYTES) return `a component of its path is longer than ${NAME_MAX_BYTES} bytes`;
  return undefined;
}

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
    parts.push(part);
  }
  return parts;
}

/** Where a normalized entry goes: its parent's components joined by `/` ('' for the root) and its name ('' for the root itself). */
export interface EntryPlace {
  parent: string;
  name: string;
}

/** A `.` or `..` component, or an empty one: what only the full normalization handles. */
const UNCLEAN_PATH = /(?:^|\/)\.\.?(?:\/|$)|\/\//;

/**
 * normalizeEntryPath's answer as a place, without splitting a path that needs no more than its
 * leading `./` or `/` and trailing `/` taken off (nearly every tar member): this runs for every
 * entry of every layer a mount stacks. Undefined when the path climbs above the root.
 */
export function entryPlace(path: string): EntryPlace | undefined {
  const trimmed = trimEntryPath(path);
  if (!UNCLEAN_PATH.test(trimmed)) {
    const slash = trimmed.lastIndexOf('/');
    return { parent: slash < 0 ? '' : trimmed.slice(0, slash), name: trimmed.slice(slash + 1) };
  }
  const parts = normalizeEntryPath(path);
  if (!parts) return undefined;
  return { parent: parts.slice(0, -1).join('/'), name: parts[parts.length - 1] ?? '' };
}

/** The path without its leading `/` and `./` and its trailing `/`: all most tar members need. */
function trimEntryPath(path: string): string {
  let start = 0;
  for (;;) {
    if (path.startsWith('/', start)) start += 1;
    else if (path.startsWith('./', start)) start += 2;
    else break;
  }
  let end = path.length;
  while (end > start && path.charCodeAt(end - 1) === 0x2f) end--;
  return start === 0 && end === path.length ? path : path.slice(start, end);
}

/**
 * normalizeEntryPath's components joined by `/` ('' for the root), without splitting a path that
 * needs only trimming; undefined when the path climbs above the root.
 */
export function normalizedEntryPath(path: string): string | undefined {
  const trimmed = trimEntryPath(path);
  if (!UNCLEAN_PATH.test(trimmed)) return trimmed;
  return normalizeEntryPath(path)?.join('/');
}

/** The components of a place's parent ([] for the root). */
export function parentParts(place: EntryPlace): string[] {
  return place.parent === '' ? [] : place.parent.split('/');
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export type WhiteoutKind =
  | { kind: 'none' }
  | { kind: 'opaque' }
  | { kind: 'remove'; name: string }
  /** `.wh.` alone, `.wh..`, `.wh...`, or other `.wh..wh.*` (aufs internals): never applied. */
  | { kind: 'invalid' };

// Shared answers: this runs for every entry of every layer.
const NOT_WHITEOUT: WhiteoutKind = Object.freeze({ kind: 'none' });
const OPAQUE: WhiteoutKind = Object.freeze({ kind: 'opaque' });
const INVALID_WHITEOUT: WhiteoutKind = Object.freeze({ kind: 'invalid' });

/** Classifies the last component of a normalized entry path by the OCI whiteout rules. */
export function whiteoutOf(baseName: string): WhiteoutKind {
  if (!baseName.startsWith(WHITEOUT_PREFIX)) return NOT_WHITEOUT;
  if (baseName === OPAQUE_WHITEOUT) return OPAQUE;
  const name = baseName.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..' || name.startsWith(WHITEOUT_PREFIX)) return INVALID_WHITEOUT;
  return { kind: 'remove', name };
}
