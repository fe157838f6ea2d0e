import { KrgoError } from '../errors.js';
import { parseProfileWindows, type ProfileWindows } from '../index/profile-windows.js';
import { parseProfileFetches, type ProfileFetches } from '../index/profile-fetches.js';
import { resolvePath } from './resolve-path.js';
import type { Inode, MergedTree } from './merged-tree.js';

/**
 * What a workload read of an image, in the order it first read it: the files, and which parts
 * of each. Stored beside the layer indexes, it lets a later mount fetch all of it in one burst
 * of parallel range requests instead of one round trip per file the program happens to open
 * next (eStargz's prioritized files and nydus's prefetch list serve the same end).
 */
export interface AccessProfile {
  version: 1;
  files: ProfileFile[];
  /** Stored with the profile in the registry (index-artifact.ts): where its replay starts inflating. */
  seekWindows?: ProfileWindows;
  /** Stored with the profile in the registry: the ranges its replay fetches, sent before the indexes are decoded. */
  fetches?: ProfileFetches;
}

export interface ProfileFile {
  /** Absolute path in the image; symlinks are followed inside the tree. */
  path: string;
  /** [offset, length] pairs; absent means the whole file. */
  ranges?: [number, number][];
}

/** Recorded ranges are widened to pages (what the kernel reads at least): exact, and small reads of one page make one range. */
const GRAIN = 4096;
/** Bounds on a profile from elsewhere (the registry): beyond them it is refused, not trusted. */
export const MAX_PROFILE_BYTES = 16 * 1024 * 1024;
const MAX_FILES = 200_000;
const MAX_RANGES_PER_FILE = 4096;

/** Records the reads a mount answers, per file, in first-read order. */
export class AccessRecorder {
  private readonly files = new Map<number, { path: string; ranges: [number, number][] }>();

  read(path: string, inode: Inode, offset: number, length: number): void {
    if (length <= 0) return;
    let file = this.files.get(inode.ino);
    if (!file) this.files.set(inode.ino, (file = { path, ranges: [] }));
    const start = Math.floor(offset / GRAIN) * GRAIN;
    const end = Math.min(inode.size, Math.ceil((offset + length) / GRAIN) * GRAIN);
    if (end > start) file.ranges.push([start, end]);
    // A long-running mount keeps reading: the list is folded as it grows.
    if (file.ranges.length > 2 * MAX_RANGES_PER_FILE) file.ranges = boundRanges(mergeRanges(file.ranges));
  }

  profile(): AccessProfile {
    return {
      version: 1,
      files: [...this.files.values()].map((f) => ({ path: f.path, ranges: boundRanges(mergeRanges(f.ranges)).map(([s, e]) => [s, e - s] as [number, number]) })),
    };
  }
}

/** Sorted, overlapping or touching [start, end) ranges joined. */
function mergeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/**
 * At most MAX_RANGES_PER_FILE ranges (what a profile may hold): scattered reads of a big file are
 * joined across ever wider gaps until they fit.
 */
function boundRanges(ranges: [number, number][]): [number, number][] {
  let out = ranges;
  for (let gap = GRAIN; out.length > MAX_RANGES_PER_FILE; gap *= 2) {
    const joined: [number, number][] = [];
    for (const [s, e] of out) {
      const last = joined[joined.length - 1];
      if (last && s - last[1] <= gap) last[1] = Math.max(last[1], e);
      else joined.push([s, e]);
    }
    out = joined;
  }
  return out;
}

export function encodeProfile(profile: AccessProfile): Buffer {
  return Buffer.from(`${JSON.stringify(profile)}\n`);
}

/**
 * A profile as written by `krgo mount --record-profile` (JSON), or a plain list of absolute
 * paths, one per line (# comments allowed), each meaning the whole file.
 */
export function parseProfile(text: string): AccessProfile {
  const invalid = (why: string): never => {
    throw new KrgoError('USAGE', `not a usable access profile: ${why}`);
  };
  if (Buffer.byteLength(text) > MAX_PROFILE_BYTES) invalid(`larger than ${MAX_PROFILE_BYTES} bytes`);
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('{')) {
    const paths = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const files = paths.map((path) => (path.startsWith('/') ? { path } : invalid(`${JSON.stringify(path)} is not an absolute path`)));
    if (files.length > MAX_FILES) invalid(`more than ${MAX_FILES} files`);
    return { version: 1, files };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return invalid((err as Error).message);
  }
  const doc = raw as { version?: unknown; files?: unknown; seekWindows?: unknown; fetches?: unknown };
  if (doc.version !== 1) invalid(`version ${JSON.stringify(doc.version)}, this krgo reads 1`);
  if (!Array.isArray(doc.files) || doc.files.length > MAX_FILES) invalid(`"files" must be an array of at most ${MAX_FILES}`);
  const files = (doc.files as unknown[]).map((f): ProfileFile => {
    const file = f as { path?: unknown; ranges?: unknown };
    if (typeof file?.path !== 'string' || !file.path.startsWith('/')) return invalid(`a file without an absolute path`);
    if (file.ranges === undefined) return { path: file.path };
    const ranges = file.ranges;
    if (!Array.isArray(ranges) || ranges.length > MAX_RANGES_PER_FILE) return invalid(`ranges of ${file.path} must be an array of at most ${MAX_RANGES_PER_FILE}`);
    for (const r of ranges) {
      if (!Array.isArray(r) || r.length !== 2 || !r.every((n) => Number.isSafeInteger(n) && n >= 0)) invalid(`a range of ${file.path} is not [offset, length]`);
    }
    return { path: file.path, ranges: ranges as [number, number][] };
  });
  return {
    version: 1,
    files,
    ...(doc.seekWindows !== undefined ? { seekWindows: parseProfileWindows(doc.seekWindows, invalid) } : {}),
    ...(doc.fetches !== undefined ? { fetches: parseProfileFetches(doc.fetches, invalid) } : {}),
  };
}

/** The [offset, length] ranges a profile asks of one of its files, clipped to the file's size (the whole file when it names none). */
export function rangesOf(file: ProfileFile, size: number): [number, number][] {
  const clipped: [number, number][] = [];
  for (const [offset, length] of file.ranges ?? [[0, size]]) {
    const inFile = Math.min(length, size - offset);
    if (inFile > 0) clipped.push([offset, inFile]);
  }
  return clipped;
}

export interface PlannedRead {
  inode: Inode;
  offset: number;
  length: number;
}

/**
 * The reads a profile asks for in this tree, in profile order: paths resolved as a chroot
 * would (symlinks followed, never out of the tree), ranges clipped to the file; paths that
 * are not regular files here are counted as missing.
 */
export function planProfile(tree: MergedTree, profile: AccessProfile): { reads: PlannedRead[]; missing: number } {
  const reads: PlannedRead[] = [];
  let missing = 0;
  for (const file of profile.files) {
    const inode = resolvePath(tree, file.path);
    if (inode?.type !== 'file') {
      missing++;
      continue;
    }
    for (const [offset, length] of rangesOf(file, inode.size)) reads.push({ inode, offset, length });
  }
  return { reads, missing };
}
