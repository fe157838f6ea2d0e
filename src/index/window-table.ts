import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { KrgoError } from '../errors.js';
import { sha256Of, type Digest } from '../digest.js';

/** A deflate window: how far back a gzip stream may refer, so what a seek point needs of the output before it. */
export const WINDOW_BYTES = 32 * 1024;
/**
 * What an index keeps of a window's hash since format 6: 128 bits, still 2^128 work to forge a
 * window for a given index, and 16 bytes less per window of what a mount fetches up front (the
 * hashes do not compress). Format 5 kept all 32.
 */
export const WINDOW_HASH_BYTES = 16;

/**
 * The 32 KiB windows of a layer's gzip seek points, kept apart from its index: they are most of
 * its bytes, and a mount needs one only for a span it actually reads. Each window is deflated on
 * its own and the results are concatenated into one blob, so any one can be fetched by range;
 * the index keeps each one's place and the SHA-256 of its inflated bytes, so a window fetched by
 * range is checked before use.
 */
export interface WindowTable {
  /** sha256 of the blob. */
  digest: Digest;
  size: number;
  refs: WindowRef[];
  /** The blob itself, when at hand (built here, or kept in the cache beside the index). */
  blob?: Buffer;
  /** The whole blob on its way (undefined if it fails): windows are taken from it rather than fetched by range. */
  coming?: Promise<Buffer | undefined>;
}

export interface WindowRef {
  offset: number;
  length: number;
  sha256: Buffer;
}

export function packWindows(windows: readonly Buffer[]): WindowTable {
  return tableOf(windows.map(packWindow));
}

/** One window deflated alone, with the hash of its inflated bytes. */
export interface PackedWindow {
  packed: Buffer;
  sha256: Buffer;
}

/**
 * Deflates a window as soon as it is found, so an index build holds a few KiB per window
 * instead of 32 (a 61 MB layer has about a thousand).
 */
export function packWindow(window: Buffer): PackedWindow {
  // Level 1: 1000 windows deflate in 0.30 s against 0.53 s at level 6, for a blob 6% larger
  // (native-notes/gzip-random-access.md).
  return { packed: deflateRawSync(window, { level: 1 }), sha256: createHash('sha256').update(window).digest() };
}

/** The table (and blob) of packed windows, in order. */
export function tableOf(windows: readonly PackedWindow[]): WindowTable {
  const refs: WindowRef[] = [];
  let offset = 0;
  for (const { packed, sha256 } of windows) {
    refs.push({ offset, length: packed.length, sha256 });
    offset += packed.length;
  }
  const blob = Buffer.concat(windows.map((w) => w.packed));
  return { digest: sha256Of(blob), size: blob.length, refs, blob };
}

/** Where window `i` lies in the blob: [start, end). */
export function windowRange(table: WindowTable, i: number): [number, number] {
  const ref = table.refs[i];
  if (!ref) throw new KrgoError('INDEX_INVALID', `the index has no window ${i}`);
  return [ref.offset, ref.offset + ref.length];
}

/** Window `i` from its packed bytes, checked against the index; anything off is INDEX_INVALID. */
export function unpackWindow(table: WindowTable, i: number, packed: Buffer): Buffer {
  const ref = table.refs[i]!;
  let window: Buffer;
  try {
    // A window is 32 KiB at most: a crafted one that inflates further is refused at that size.
    window = inflateRawSync(packed, { maxOutputLength: WINDOW_BYTES });
  } catch (err) {
    throw new KrgoError('INDEX_INVALID', `seek window ${i} of blob ${table.digest} does not inflate: ${(err as Error).message}`);
  }
  // The index keeps the whole hash (format 5) or its first WINDOW_HASH_BYTES (6).
  if (ref.sha256.length < WINDOW_HASH_BYTES || !createHash('sha256').update(window).digest().subarray(0, ref.sha256.length).equals(ref.sha256)) {
    throw new KrgoError('INDEX_INVALID', `seek window ${i} of blob ${table.digest} does not match its index`);
  }
  return window;
}

/** Window `i` from the whole blob at hand. */
export function windowFromBlob(table: WindowTable, blob: Buffer, i: number): Buffer {
  const [start, end] = windowRange(table, i);
  return unpackWindow(table, i, blob.subarray(start, end));
}
