import { KrgoError } from '../errors.js';
import { nativeFs, type GzipIndexerHandle } from '../native/native-fs.js';
import { availableParallelism } from 'node:os';
import { limitConcurrency } from '../util/concurrency.js';

/** A place to resume inflation: after zlib's zran, at a deflate block boundary. */
export interface SeekPoint {
  /** Offset of the first whole compressed byte after the boundary. */
  compressedOffset: number;
  /** How many bits of the byte before `compressedOffset` belong to the next block (0-7). */
  bits: number;
  uncompressedOffset: number;
}

/**
 * The first compressed byte that holds any of a point's bits: where the bytes handed to the
 * inflater from that point begin (extractGzipRange, referencedWindow).
 */
export function pointByte(point: SeekPoint): number {
  return point.compressedOffset - (point.bits ? 1 : 0);
}

/** A seek point as a builder reports it: with its window when the point is keyed (see below). */
export interface Checkpoint extends SeekPoint {
  window?: Buffer;
}

/**
 * Seek points every GRID bytes of output (or at the next deflate block boundary after that):
 * where a read may start or stop. Deflate blocks of common layers hold 16–90 KiB of output
 * (median about 53 KiB), so 16 KiB puts a point at nearly every block boundary, as fine as the
 * data allows, while a crafted stream of tiny blocks still gets at most one point per 16 KiB
 * (native-notes/gzip-random-access.md has the measurements).
 */
export const DEFAULT_GRID = 16 * 1024;
/**
 * Only some points keep their 32 KiB window (are keyed): one at least this many output bytes
 * after the last. A read starting at a point without one starts at the keyed point before it,
 * or, when the output before the point is cached, takes its last 32 KiB as the window.
 */
export const DEFAULT_WINDOW_SPACING = 128 * 1024;

const PULL_BYTES = 1 << 20;
const PUSH_BYTES = 256 * 1024;

function gzipError(err: unknown): never {
  throw new KrgoError('BAD_TAR', `layer data is not valid gzip: ${(err as Error).message}`, { cause: err });
}

/**
 * Inflates a gzip stream (one or many members) in one pass and records a seek point every
 * `grid` bytes of output, with its window every `windowSpacing` bytes, so the stream can later
 * be read from the middle.
 */
export class GzipIndexBuilder {
  readonly checkpoints: Checkpoint[] = [];
  private readonly handle: GzipIndexerHandle;

  constructor(
    readonly grid = DEFAULT_GRID,
    readonly windowSpacing = DEFAULT_WINDOW_SPACING,
  ) {
    this.handle = nativeFs.gzipIndexerCreate(grid, windowSpacing);
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
      // The native side keeps the window of keyed points only (one every windowSpacing bytes).
      for (const p of nativeFs.gzipIndexerTakePoints(this.handle)) {
        this.checkpoints.push({ compressedOffset: p.in, bits: p.bits, uncompressedOffset: p.out, ...(p.window ? { window: p.window } : {}) });
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
  return { checkpoint, start: pointByte(checkpoint), end: after ? Math.min(after.compressedOffset + 1, compressedSize) : compressedSize };
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

/**
 * Inflating jobs on libuv's pool at once. The pool has 4 threads (UV_THREADPOOL_SIZE) and serves
 * file I/O too: with every thread inflating a replay's batches, a mount's status write waited
 * 25–50 ms behind them on its way to ready. More jobs than cores inflate no sooner.
 */
const INFLATE_JOBS = Math.max(1, Math.min(availableParallelism(), Number(process.env['UV_THREADPOOL_SIZE'] ?? 4) - 2));
const inflateSlot = limitConcurrency(INFLATE_JOBS);

/**
 * extractGzipRange inflating on a worker thread (libuv's pool), so the thread that serves reads
 * and the network goes on meanwhile. `compressed` and `window` must not change until it settles.
 * `urgent`: a read waits on it (it goes before background inflating that waits for a slot).
 */
export async function extractGzipRangeAsync(point: SeekPoint, window: Buffer, compressed: Buffer, offset: number, length: number, urgent = false): Promise<Buffer> {
  try {
    return await inflateSlot(() => nativeFs.gzipExtractAsync(compressed, point.bits, window, offset - point.uncompressedOffset, length), urgent);
  } catch (err) {
    gzipError(err);
  }
}
