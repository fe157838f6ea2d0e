import { KrgoError } from '../../errors.js';
import type { BlobRange } from '../../blob/range-source.js';
import { extractGzipRangeAsync, pointByte } from '../../gzip/gzip-index.js';
import type { LayerIndex } from '../../index/index-format.js';
import { seekWindow } from './seek-windows.js';
import { WINDOW_BYTES, windowRange } from '../../index/window-table.js';
import { MAX_SPAN_OUTPUT, type ExtraWindow, type Span, type SpanContext, type SpanFormat } from './span-format.js';
import { joinPieces } from '../../util/join-pieces.js';

/**
 * Output inflated in one pass at most, over cells whose bytes are all in: a batch of many cells
 * only when they are small (a crafted layer's cells may each inflate to MAX_SPAN_OUTPUT).
 */
const MAX_BATCH_OUTPUT = 4 * 1024 * 1024;

/** The last `n` bytes of `a` followed by `b`. */
function lastBytes(a: Buffer, b: Buffer, n: number): Buffer {
  if (b.length >= n) return b.subarray(b.length - n);
  return Buffer.concat([a.subarray(Math.max(0, a.length - (n - b.length))), b]);
}

/**
 * A gzip layer cut at its index's seek points (about one per deflate block: cells). A run
 * of cells is fetched with one Range request from its first cell's point to the end of its last
 * cell, and inflated there; each later cell resumes with the last 32 KiB the one before it
 * produced, which is its window. The first cell's window comes, cheapest first, from the cell
 * before it when that is cached (so a fetch that stopped at a cell is resumed, not redone),
 * from the index's windows blob when the point keeps one (or from an access profile's, which
 * keeps windows where its replay starts), or else the fetch starts at an earlier cell (at most
 * the window spacing back, 128 KiB of output by default).
 */
export class GzipCells implements SpanFormat {
  readonly spans: Span[];

  constructor(private readonly ctx: SpanContext) {
    this.spans = gzipCellsOf(ctx.index);
  }

  async fetch(run: readonly number[], deliver: (i: number, data: Buffer) => void, background: boolean): Promise<void> {
    const { start, window, windowRequested } = await this.startOf(run[0]!, background);
    const cells: number[] = [];
    for (let i = start; i <= run[run.length - 1]!; i++) cells.push(i);
    // The window's request first: its answer is not queued behind the cells'.
    await windowRequested;
    await this.inflateRun(cells, window, deliver, background);
  }

  startCost(i: number): number {
    let bytes = 0;
    for (let start = i; start > 0 && this.spans[start]!.out > 0; start--) {
      const keyed = this.windowAt(start);
      if (keyed) return bytes + keyed.table.refs[keyed.w]!.length;
      bytes += this.spans[start - 1]!.inEnd - this.spans[start - 1]!.in;
    }
    return bytes;
  }

  needsWindow(i: number): boolean {
    return this.spans[i]!.out > 0 && !this.windowAt(i);
  }

  windowPlaceAt(i: number): BlobRange | undefined {
    const keyed = this.windowAt(i);
    // A profile's windows come with their blob, whole: only the index's own are read by range.
    if (this.spans[i]!.out === 0 || keyed?.table !== this.ctx.index.windows) return undefined;
    const [start, end] = windowRange(keyed.table, keyed.w);
    return { digest: keyed.table.digest, start, end };
  }

  /** The window kept for cell `i`'s seek point: the index's, else an access profile's. */
  private windowAt(i: number): ExtraWindow | undefined {
    const w = this.ctx.index.checkpoints[i]!.window;
    return w >= 0 ? { table: this.ctx.index.windows, w } : this.ctx.extraWindows.get(i);
  }

  /** Where a fetch reaching cell `first` starts, and how it gets its window there. */
  private async startOf(first: number, background: boolean): Promise<{ start: number; window: Promise<Buffer>; windowRequested?: Promise<void> }> {
    for (let start = first; ; start--) {
      const cell = this.spans[start]!;
      if (cell.outEnd - cell.out > MAX_SPAN_OUTPUT) {
        throw new KrgoError('TOO_LARGE', `span ${start} of layer ${this.ctx.layerDigest.slice(0, 19)} inflates to ${cell.outEnd - cell.out} bytes, more than the ${MAX_SPAN_OUTPUT} a read may inflate`);
      }
      // Nothing comes before the start of the stream: no window.
      if (cell.out === 0) return { start, window: Promise.resolve(Buffer.alloc(0)) };
      const before = await this.cachedWindowBefore(start);
      if (before) return { start, window: Promise.resolve(before) };
      const keyed = this.windowAt(start);
      if (keyed) {
        let requested!: () => void;
        const windowRequested = new Promise<void>((resolve) => (requested = resolve));
        const window = seekWindow(this.ctx, keyed.table, keyed.w, background, requested);
        // Its failure is the run's, seen once the run's range is asked for.
        window.catch(() => undefined);
        return { start, window, windowRequested };
      }
    }
  }

  /**
   * The 32 KiB of output before cell `start` when the cells that hold them are all at hand (a
   * cell may hold less than a window: the grid is finer than 32 KiB), else undefined.
   */
  private async cachedWindowBefore(start: number): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    let have = 0;
    for (let i = start - 1; i >= 0 && have < WINDOW_BYTES; i--) {
      const cell = await this.ctx.findSpan(i);
      if (!cell) return undefined;
      parts.unshift(cell);
      have += cell.length;
    }
    const joined = joinPieces(parts);
    return joined.subarray(Math.max(0, joined.length - WINDOW_BYTES));
  }

  /**
   * One Range request for adjacent cells, each inflated and delivered as soon as its compressed
   * bytes are in (the window arriving in parallel): a reader of the first cell of a long run
   * does not wait for the rest of the response.
   */
  private async inflateRun(run: number[], windowFetch: Promise<Buffer>, deliver: (i: number, data: Buffer) => void, background: boolean): Promise<void> {
    const cells = run.map((i) => this.spans[i]!);
    const first = cells[0]!;
    const last = cells[cells.length - 1]!;
    let window: Buffer | undefined;
    let next = 0;
    let progress: { data: Buffer; filled: number } | undefined;
    // Cells are inflated one after another (each one's window ends the one before) on a worker
    // thread, while this one serves reads and takes in the rest of the response.
    let decoding: Promise<void> = Promise.resolve();
    let running = false;
    let failure: unknown;
    const decodeArrived = () => {
      if (running || failure !== undefined) return;
      running = true;
      decoding = (async () => {
        try {
          while (progress && window && next < cells.length && progress.filled >= cells[next]!.inEnd - first.in) {
            // Every cell whose bytes are in, inflated in one pass (one hop to the worker thread
            // per batch, not per cell: a cell holds ~16 KiB), then handed out cell by cell.
            let last = next;
            while (last + 1 < cells.length && progress.filled >= cells[last + 1]!.inEnd - first.in && cells[last + 1]!.outEnd - cells[next]!.out <= MAX_BATCH_OUTPUT) last++;
            const from = cells[next]!;
            const to = cells[last]!;
            const slice = progress.data.subarray(from.in - first.in, to.inEnd - first.in);
            const plain = await extractGzipRangeAsync(this.ctx.index.checkpoints[run[next]!]!, window, slice, from.out, to.outEnd - from.out, !background);
            if (plain.length !== to.outEnd - from.out) {
              throw new KrgoError('BAD_TAR', `layer ${this.ctx.layerDigest}: spans at ${from.out} decoded to ${plain.length} bytes, expected ${to.outEnd - from.out}`);
            }
            window = lastBytes(window, plain, WINDOW_BYTES);
            for (; next <= last; next++) deliver(run[next]!, plain.subarray(cells[next]!.out - from.out, cells[next]!.outEnd - from.out));
          }
        } catch (err) {
          failure = err;
        } finally {
          running = false;
        }
      })();
    };
    const [compressed] = await Promise.all([
      this.ctx.source.read(this.ctx.layerDigest, first.in, last.inEnd, {
        onProgress: (data, filled) => {
          progress = { data, filled };
          decodeArrived();
        },
        background,
      }),
      windowFetch.then((w) => {
        window = w;
        decodeArrived();
      }),
    ]);
    progress = { data: compressed, filled: compressed.length };
    // What is being inflated finishes first; then whatever arrived after it started.
    await decoding;
    decodeArrived();
    await decoding;
    if (failure !== undefined) throw failure;
    if (next < cells.length) throw new KrgoError('BAD_TAR', `layer ${this.ctx.layerDigest}: range ${first.in}-${last.inEnd} ended before span ${run[next]}`);
  }
}

/** A gzip layer's cells: from each seek point to the next, in both streams. */
export function gzipCellsOf(index: LayerIndex): Span[] {
  const points = index.checkpoints;
  if (points.length === 0) throw new KrgoError('INDEX_INVALID', `gzip layer ${index.layerDigest} has no seek points`);
  return points.map((cp, i) => {
    const next = points[i + 1];
    return {
      out: cp.uncompressedOffset,
      outEnd: next ? next.uncompressedOffset : index.uncompressedSize,
      in: pointByte(cp),
      // The next point's block may start inside the byte this cell ends in.
      inEnd: next ? Math.min(next.compressedOffset + 1, index.compressedSize) : index.compressedSize,
    };
  });
}
