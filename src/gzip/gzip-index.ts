import { KrgoError } from '../errors.js';
import { nativeFs, type GzipIndexerHandle } from '../native/native-fs.js';

/** A place to resume inflation: after zlib's zran, at a deflate block boundary. */
export interface SeekPoint {
  /** Offset of the first whole compressed byte after the boundary. */
  compressedOffset: number;
  /** How many bits of the byte before `compressedOffset` belong to the next block (0-7). */
  bits: number;
  uncompressedOffset: number;
}

/** A seek point with its window: the last (up to) 32 KiB of output before it, the dictionary to resume with. */
export interface Checkpoint extends SeekPoint {
  window: Buffer;
}

export const DEFAULT_SPAN = 1024 * 1024;
const PULL_BYTES = 1 << 20;
const PUSH_BYTES = 256 * 1024;

function gzipError(err: unknown): never {
  throw new KrgoError('BAD_TAR', `layer data is not valid gzip: ${(err as Error).message}`, { cause: err });
}

/**
 * Inflates a gzip stream (one or many members) in one pass and records checkpoints every
 * `span` bytes of output, so the stream can later be read from the middle.
 */
export class GzipIndexBuilder {
  readonly checkpoints: Checkpoint[] = [];
  private readonly handle: GzipIndexerHandle;

  constructor(readonly span = DEFAULT_SPAN) {
    this.handle = nativeFs.gzipIndexerCreate(span);
  }

  async *inflate(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      // Bounded pieces: the native side compacts its input buffer after each pull.
      for (let off = 0; off < chunk.length; off += PUSH_BYTES) {
        nativeFs.gzipIndexerPush(this.handle, chunk.subarray(off, off + PUSH_BYTES));
        yield* this.drain();
      }
    }
    yield* this.drain();
    const state = nativeFs.gzipIndexerState(this.handle);
    if (!state.atEnd) throw new KrgoError('BAD_TAR', `gzip stream ends early, after ${state.totalIn} compressed bytes`);
  }

  private *drain(): Generator<Buffer> {
    for (;;) {
      let out: Buffer;
      try {
        out = nativeFs.gzipIndexerPull(this.handle, PULL_BYTES);
      } catch (err) {
        gzipError(err);
      }
      for (const p of nativeFs.gzipIndexerTakePoints(this.handle)) {
        this.checkpoints.push({ compressedOffset: p.in, bits: p.bits, uncompressedOffset: p.out, window: p.window });
      }
      if (out.length === 0) return;
      yield out;
    }
  }

  get totals(): { compressed: number; uncompressed: number } {
    const state = nativeFs.gzipIndexerState(this.handle);
    return { compressed: state.totalIn, uncompressed: state.totalOut };
  }
}

/** The compressed byte range to fetch for uncompressed [offset, offset+length), and where to start. */
export function planGzipRead<P extends SeekPoint>(checkpoints: readonly P[], compressedSize: number, offset: number, length: number): { checkpoint: P; start: number; end: number } {
  let lo = 0;
  let hi = checkpoints.length - 1;
  if (hi < 0 || checkpoints[0]!.uncompressedOffset > offset) throw new KrgoError('BAD_TAR', 'gzip index has no checkpoint before the requested offset');
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (checkpoints[mid]!.uncompressedOffset <= offset) lo = mid;
    else hi = mid - 1;
  }
  const checkpoint = checkpoints[lo]!;
  const after = checkpoints.find((c, i) => i > lo && c.uncompressedOffset >= offset + length);
  return { checkpoint, start: checkpoint.compressedOffset - (checkpoint.bits ? 1 : 0), end: after ? Math.min(after.compressedOffset + 1, compressedSize) : compressedSize };
}

/**
 * Uncompressed bytes [offset, offset+length) given `compressed`, the blob's bytes from the seek
 * point on (as planned by planGzipRead), and the point's window.
 */
export function extractGzipRange(point: SeekPoint, window: Buffer, compressed: Buffer, offset: number, length: number): Buffer {
  try {
    return nativeFs.gzipExtract(compressed, point.bits, window, offset - point.uncompressedOffset, length);
  } catch (err) {
    gzipError(err);
  }
}
