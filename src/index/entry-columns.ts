import { xattrsFromBase64, type EntryType, type StargzChunk, type TarEntry } from '../tar/tar-entry.js';
import type { IndexPoint } from './index-format.js';

/**
 * Index format 5's body as one JSON document of columns: each field of every entry (and of every
 * seek point) in one array. A tar lists neighbours with like values (a directory's files, their
 * owners, times and modes), and offsets only grow, so offsets and times are stored as
 * differences: brotli then packs the body ~23% smaller than one tuple per entry. Paths stay
 * whole: front-coded, the body was 4% smaller still, but a mount decoded them into rope strings,
 * ~13 ms slower (native-notes/gzip-random-access.md).
 */
export const ENTRY_TYPES: readonly EntryType[] = ['file', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'];

/** An eStargz chunk as indexes store it: fileOffset, size, memberOffset, innerOffset, digest. */
export type ChunkTuple = [number, number, number, number, string?];

export interface EntryColumns {
  path: string[];
  type: number[];
  mode: number[];
  uid: number[];
  gid: number[];
  size: number[];
  /** Differences from the entry before. */
  mtime: number[];
  mtimeNsec: number[];
  linkname: string[];
  devmajor: number[];
  devminor: number[];
  /** Differences from the entry before. */
  dataOffset: number[];
  /** dataOffset minus headerOffset (512 for most entries). */
  headerLength: number[];
  /** The few entries that have them: [entry number, value], in entry order. */
  xattrs: [number, Record<string, string>][];
  /**
   * The entries with an access time (PAX headers often give every entry one), in columns:
   * format 6. Format 5 had one [entry number, atime, atimeNsec] tuple each, ~2× the bytes.
   */
  atime: AtimeColumns | [number, number, number][];
  chunks: [number, ChunkTuple[]][];
  deps: [number, string[]][];
}

export interface AtimeColumns {
  /** Entry numbers, as differences from the one before. */
  entry: number[];
  /** Differences from the access time before. */
  time: number[];
  nsec: number[];
}

export interface PointColumns {
  /** Differences from the point before. */
  compressed: number[];
  bits: number[];
  /** Differences from the point before. */
  uncompressed: number[];
  window: number[];
}

export function entryColumns(entries: readonly TarEntry[]): EntryColumns {
  const atime: AtimeColumns = { entry: [], time: [], nsec: [] };
  const columns: EntryColumns = { path: [], type: [], mode: [], uid: [], gid: [], size: [], mtime: [], mtimeNsec: [], linkname: [], devmajor: [], devminor: [], dataOffset: [], headerLength: [], xattrs: [], atime, chunks: [], deps: [] };
  let previous = { mtime: 0, dataOffset: 0 };
  let previousAtime = { entry: 0, time: 0 };
  entries.forEach((e, i) => {
    columns.path.push(e.path);
    columns.type.push(ENTRY_TYPES.indexOf(e.type));
    columns.mode.push(e.mode);
    columns.uid.push(e.uid);
    columns.gid.push(e.gid);
    columns.size.push(e.size);
    columns.mtime.push(e.mtime - previous.mtime);
    columns.mtimeNsec.push(e.mtimeNsec);
    columns.linkname.push(e.linkname);
    columns.devmajor.push(e.devmajor);
    columns.devminor.push(e.devminor);
    columns.dataOffset.push(e.dataOffset - previous.dataOffset);
    columns.headerLength.push(e.dataOffset - e.headerOffset);
    if (Object.keys(e.xattrs).length) columns.xattrs.push([i, Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('base64')]))]);
    if (e.atime !== undefined) {
      atime.entry.push(i - previousAtime.entry);
      atime.time.push(e.atime - previousAtime.time);
      atime.nsec.push(e.atimeNsec ?? 0);
      previousAtime = { entry: i, time: e.atime };
    }
    if (e.chunks) columns.chunks.push([i, e.chunks.map((c) => [c.fileOffset, c.size, c.memberOffset, c.innerOffset, ...(c.digest ? [c.digest] : [])] as ChunkTuple)]);
    if (e.deps) columns.deps.push([i, e.deps]);
    previous = e;
  });
  return columns;
}

export function pointColumns(points: readonly IndexPoint[]): PointColumns {
  const columns: PointColumns = { compressed: [], bits: [], uncompressed: [], window: [] };
  let compressed = 0;
  let uncompressed = 0;
  for (const p of points) {
    columns.compressed.push(p.compressedOffset - compressed);
    columns.bits.push(p.bits);
    columns.uncompressed.push(p.uncompressedOffset - uncompressed);
    columns.window.push(p.window);
    compressed = p.compressedOffset;
    uncompressed = p.uncompressedOffset;
  }
  return columns;
}

/** The xattrs of the many entries that have none: one shared, frozen object (a mount decodes thousands). */
export const NO_XATTRS: Record<string, Buffer> = Object.freeze({}) as Record<string, Buffer>;

type Invalid = (why: string) => never;

const isArrayOf = (value: unknown, length: number): value is unknown[] => Array.isArray(value) && value.length === length;

/**
 * The entries back from their columns; `invalid` is called for anything that does not add up
 * (an index from elsewhere is never trusted). Hints past `maxDeps` per file are dropped.
 */
export function entriesOf(columns: EntryColumns, count: number, maxDeps: number, invalid: Invalid): TarEntry[] {
  const dense = ['path', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'mtimeNsec', 'linkname', 'devmajor', 'devminor', 'dataOffset', 'headerLength'] as const;
  for (const name of dense) if (!isArrayOf(columns[name], count)) invalid(`entry column ${name} does not have ${count} values`);
  const { path, type, mode, uid, gid, size, mtime, mtimeNsec, linkname, devmajor, devminor, dataOffset, headerLength } = columns;
  const atimes = atimeColumns(columns.atime ?? [], invalid);
  const entries: TarEntry[] = new Array<TarEntry>(count);
  let lastMtime = 0;
  let lastOffset = 0;
  let nextAtime = 0;
  for (let i = 0; i < count; i++) {
    const kind = ENTRY_TYPES[type[i]!];
    if (!kind) invalid(`entry ${i} has an unknown type`);
    if (typeof path[i] !== 'string') invalid(`entry ${i} has a malformed path`);
    lastMtime += mtime[i]!;
    lastOffset += dataOffset[i]!;
    const entry: TarEntry = {
      path: path[i]!, type: kind!, mode: mode[i]!, uid: uid[i]!, gid: gid[i]!, size: size[i]!, mtime: lastMtime, mtimeNsec: mtimeNsec[i]!, linkname: linkname[i]!, devmajor: devmajor[i]!, devminor: devminor[i]!,
      dataOffset: lastOffset, headerOffset: lastOffset - headerLength[i]!, xattrs: NO_XATTRS,
    };
    // Set here, not in a pass after: a second pass over thousands of entries cost ~18 ms of a mount's start.
    if (atimes.entry[nextAtime] === i) {
      entry.atime = atimes.time[nextAtime];
      entry.atimeNsec = atimes.nsec[nextAtime];
      nextAtime++;
    }
    entries[i] = entry;
  }
  if (nextAtime !== atimes.entry.length) invalid('the atime column is not in entry order');
  const at = (i: unknown): TarEntry => (Number.isInteger(i) && (i as number) >= 0 && (i as number) < count ? entries[i as number]! : invalid(`a sparse column names entry ${String(i)} of ${count}`));
  for (const [i, record] of columns.xattrs ?? []) at(i).xattrs = xattrsFromBase64(record);
  for (const [i, chunks] of columns.chunks ?? []) at(i).chunks = chunksFrom(chunks);
  for (const [i, deps] of columns.deps ?? []) {
    const hints = hintsFrom(deps, maxDeps);
    if (hints) at(i).deps = hints;
  }
  return entries;
}

/** Access times as absolute entry numbers and times, from either format's column. */
function atimeColumns(column: EntryColumns['atime'], invalid: Invalid): AtimeColumns {
  if (Array.isArray(column)) return { entry: column.map((t) => t[0]), time: column.map((t) => t[1]), nsec: column.map((t) => t[2]) };
  const { entry, time, nsec } = column;
  if (!Array.isArray(entry) || !isArrayOf(time, entry.length) || !isArrayOf(nsec, entry.length)) invalid('the atime columns do not have one value per entry each');
  let at = 0;
  let t = 0;
  return { entry: entry.map((d) => (at += d)), time: time.map((d) => (t += d)), nsec };
}

export function chunksFrom(tuples: ChunkTuple[]): StargzChunk[] {
  return tuples.map(([fileOffset, size, memberOffset, innerOffset, digest]) => ({ fileOffset, size, memberOffset, innerOffset, ...(digest ? { digest } : {}) }));
}

/** A file's hints; they only feed prefetching, so an index from elsewhere gets no more than `max` per file. */
export function hintsFrom(deps: unknown, max: number): string[] | undefined {
  return Array.isArray(deps) ? deps.filter((d): d is string => typeof d === 'string').slice(0, max) : undefined;
}

export function pointsOf(columns: PointColumns, count: number, windows: number, invalid: Invalid): IndexPoint[] {
  for (const name of ['compressed', 'bits', 'uncompressed', 'window'] as const) if (!isArrayOf(columns[name], count)) invalid(`seek point column ${name} does not have ${count} values`);
  const points: IndexPoint[] = new Array<IndexPoint>(count);
  let compressed = 0;
  let uncompressed = 0;
  for (let i = 0; i < count; i++) {
    const window = columns.window[i]!;
    if (!(Number.isInteger(window) && window >= -1 && window < windows)) invalid(`seek point ${i} names window ${window} of ${windows}`);
    compressed += columns.compressed[i]!;
    uncompressed += columns.uncompressed[i]!;
    points[i] = { compressedOffset: compressed, bits: columns.bits[i]!, uncompressedOffset: uncompressed, window };
  }
  return points;
}
