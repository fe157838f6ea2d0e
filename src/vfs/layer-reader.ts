import type { StargzChunk, TarEntry } from '../tar/tar-entry.js';
import type { Digest } from '../digest.js';
import { KrgoError } from '../errors.js';
import type { LayerIndex } from '../index/layer-index.js';
import type { BlobRange, RangeSource } from '../blob/range-source.js';
import type { SpanCache } from '../cache/span-cache.js';
import { MAX_SPAN_OUTPUT, type Span, type SpanContext, type SpanFormat } from './formats/span-format.js';
import { GzipCells } from './formats/gzip-cells.js';
import { TarSlices } from './formats/tar-slices.js';
import { ZstdWhole } from './formats/zstd-whole.js';
import { StargzChunks } from './formats/stargz-chunks.js';
import { deferred } from '../util/deferred.js';
import { joinPieces } from '../util/join-pieces.js';
import { profileWindowsOf, profileWindowTable, type ProfileWindows } from '../index/profile-windows.js';

export { SpanCache } from '../cache/span-cache.js';
export { MAX_SPAN_OUTPUT } from './formats/span-format.js';

/** Spans first..last of one layer, and where in a wish list they were first wanted. */
export interface SpanRun {
  first: number;
  last: number;
  order: number;
}

/** A sequential reader past the middle of a span gets this much of what follows fetched ahead. */
const READ_AHEAD_BYTES = 512 * 1024;
/**
 * Compressed bytes a request costs by itself (its headers, both ways): a gap up to this plus
 * what a fresh start there would cost (window, lead-in) is fetched rather than skipped.
 */
const REQUEST_BYTES = 1024;
/** No run is longer (uncompressed): a response that long would hold back the next run's readers. */
const MAX_RUN_BYTES = 4 * 1024 * 1024;

/**
 * Reads uncompressed byte ranges of one layer lazily. The layer is cut into spans by its format
 * (gzip: cells between seek points; plain tar and zstd: 1 MiB slices); spans are fetched with
 * one Range request per run of missing ones, decoded, cached (memory, then disk) and shared by
 * concurrent readers. eStargz files are read by their chunks instead.
 */
export class LayerReader {
  private readonly format: SpanFormat | undefined;
  private readonly spans: readonly Span[];
  private readonly chunks: StargzChunks;
  private readonly ctx: SpanContext;
  /** End of the previous read: a read starting there is sequential and earns a read-ahead. */
  private lastEnd = -1;
  /** Spans of runs a replay has queued, and how to start each run (see plan()). */
  private readonly planned = new Map<number, (background: boolean) => void>();

  constructor(
    private readonly index: LayerIndex,
    source: RangeSource,
    private readonly cache: SpanCache,
    private readonly onBackgroundError: (err: unknown) => void = () => undefined,
  ) {
    this.ctx = {
      index,
      source,
      cache,
      layerDigest: index.layerDigest,
      binding: (i) => this.binding(i),
      findSpan: (i) => this.findSpan(i),
      onBackgroundError,
      extraWindows: new Map(),
    };
    this.format = index.format === 'gzip' ? new GzipCells(this.ctx) : index.format === 'tar' ? new TarSlices(this.ctx) : index.format === 'zstd' ? new ZstdWhole(this.ctx) : undefined;
    this.spans = this.format?.spans ?? [];
    this.chunks = new StargzChunks(this.ctx);
  }

  get layerDigest(): Digest {
    return this.index.layerDigest;
  }

  /** Whether background fetches issued together share requests (see RangeSource.batches): a replay may then issue all its runs at once. */
  get batchesReads(): boolean {
    return this.ctx.source.batches === true;
  }

  get uncompressedSize(): number {
    return this.index.uncompressedSize;
  }

  get spanCount(): number {
    return this.spans.length;
  }

  /**
   * Bytes [offset, offset+length) of the layer. A sequential reader earns a read-ahead, up to
   * `readAheadEnd` at most (the end of the file it reads: what lies beyond is another file).
   * Within one span, a view of the cached span: not to be written to.
   */
  async read(offset: number, length: number, readAheadEnd = this.index.uncompressedSize): Promise<Buffer> {
    const parts = await this.readParts(offset, length, readAheadEnd);
    return joinPieces(parts);
  }

  /**
   * read()'s bytes as views of the spans that hold them, in order: for a caller that copies
   * them anyway (FUSE). A fresh buffer per read cost a mount's main thread ~40 ms of copies and
   * page faults while a program started. The views must not be written to.
   */
  async readParts(offset: number, length: number, readAheadEnd = this.index.uncompressedSize): Promise<Buffer[]> {
    const end = Math.min(offset + length, this.index.uncompressedSize);
    if (end <= offset) return [];
    const first = this.spanAt(offset);
    const last = this.spanAt(end - 1);
    const loaded = await this.load(first, last);
    const parts = loaded.map((data, k) => {
      const span = this.spans[first + k]!;
      return data.subarray(Math.max(offset, span.out) - span.out, Math.min(end, span.outEnd) - span.out);
    });
    const lastSpan = this.spans[last]!;
    const sequential = offset === this.lastEnd;
    this.lastEnd = end;
    if (sequential && lastSpan.outEnd < readAheadEnd && end > lastSpan.out + (lastSpan.outEnd - lastSpan.out) / 2) {
      this.prefetch(lastSpan.outEnd, Math.min(READ_AHEAD_BYTES, readAheadEnd - lastSpan.outEnd));
    }
    return parts;
  }

  /** Fetches (or finds cached) the spans of [offset, offset+length), for callers that read ahead in bulk. */
  async fetchAhead(offset: number, length: number): Promise<void> {
    const end = Math.min(offset + length, this.index.uncompressedSize);
    if (end > offset) await this.load(this.spanAt(offset), this.spanAt(end - 1));
  }

  /** Bytes of one tar member of this layer, wherever its format keeps them. */
  readEntry(entry: TarEntry, offset: number, length: number): Promise<Buffer> {
    return entry.chunks ? this.readChunks(entry.chunks, offset, length) : this.read(entry.dataOffset + offset, Math.min(length, entry.size - offset), entry.dataOffset + entry.size);
  }

  /** eStargz: bytes [fileOffset, fileOffset+length) of a file from its chunks. */
  readChunks(chunks: readonly StargzChunk[], fileOffset: number, length: number): Promise<Buffer> {
    return this.chunks.read(chunks, fileOffset, length);
  }

  /**
   * Starts fetching the spans of [offset, offset+length) without waiting for them (one request
   * per run); `background: false` when a read is about to wait on its head.
   */
  prefetch(offset: number, length: number, background = true): void {
    const end = Math.min(offset + length, this.index.uncompressedSize);
    if (end <= offset) return;
    this.load(this.spanAt(offset), this.spanAt(end - 1), background).catch(this.onBackgroundError);
  }

  /**
   * The spans under many ranges, as runs (spans joined with what lies between when those
   * compressed bytes cost less than starting a request of their own there, at most MAX_RUN_BYTES
   * long, so no single response holds back the first bytes a reader waits for), each tagged with
   * the `order` of the first range that asked for one of its spans.
   */
  spanRuns(ranges: readonly { offset: number; length: number; order: number }[]): SpanRun[] {
    const firstAsked = this.spansUnder(ranges);
    const runs: SpanRun[] = [];
    for (const i of [...firstAsked.keys()].sort((a, b) => a - b)) {
      const run = runs[runs.length - 1];
      const span = this.spans[i]!;
      if (run && span.outEnd - this.spans[run.first]!.out <= MAX_RUN_BYTES && this.gapBytes(run.last, i) <= REQUEST_BYTES + (this.format?.startCost?.(i) ?? 0)) {
        run.last = i;
        run.order = Math.min(run.order, firstAsked.get(i)!);
      } else runs.push({ first: i, last: i, order: firstAsked.get(i)! });
    }
    return runs;
  }

  /** The spans under `ranges`, each with the least `order` of the ranges that cover it. */
  private spansUnder(ranges: readonly { offset: number; length: number; order: number }[]): Map<number, number> {
    const firstAsked = new Map<number, number>();
    for (const r of ranges) {
      const end = Math.min(r.offset + r.length, this.index.uncompressedSize);
      if (end <= r.offset) continue;
      for (let i = this.spanAt(r.offset), last = this.spanAt(end - 1); i <= last; i++) {
        if (!firstAsked.has(i) || firstAsked.get(i)! > r.order) firstAsked.set(i, r.order);
      }
    }
    return firstAsked;
  }

  /**
   * Where fetching what `ranges` cover starts inflating with no window at hand: the first span of
   * each stretch of adjacent spans they cover, when its seek point keeps no window. Uncompressed
   * offsets, in order (what an access profile's windows are made for).
   */
  coldStarts(ranges: readonly { offset: number; length: number }[]): number[] {
    const wanted = this.spansUnder(ranges.map((r) => ({ ...r, order: 0 })));
    return [...wanted.keys()]
      .sort((a, b) => a - b)
      .filter((i) => !wanted.has(i - 1) && this.format?.needsWindow?.(i))
      .map((i) => this.spans[i]!.out);
  }

  /**
   * What a fetch of `run` asks for when nothing of the layer is cached: the compressed bytes from
   * the run's first span, or the nearest one before it that has a window (gzip), to its last; and
   * that window's place in the index's windows blob when it is read from there. For gzip and tar
   * layers; others (eStargz chunks, zstd read whole) are fetched otherwise.
   */
  coldFetch(run: SpanRun): { range: [number, number]; window?: BlobRange } | undefined {
    if (this.index.format !== 'gzip' && this.index.format !== 'tar') return undefined;
    let start = run.first;
    while (start > 0 && this.format?.needsWindow?.(start)) start--;
    const window = this.format?.windowPlaceAt?.(start);
    return { range: [this.spans[start]!.in, this.spans[run.last]!.inEnd], ...(window ? { window } : {}) };
  }

  /**
   * The compressed bytes from the gzip seek point at output offset `out` on (from its byte,
   * `pointByte`), enough to inflate `length` bytes of output, and the point's `bits`; undefined
   * when `out` is not a seek point of a gzip layer. Fetched by range, uncached.
   */
  async deflateAt(out: number, length: number): Promise<{ compressed: Buffer; bits: number } | undefined> {
    if (this.index.format !== 'gzip') return undefined;
    const first = this.spanAt(out);
    if (this.spans[first]!.out !== out) return undefined;
    let last = first;
    while (last + 1 < this.spans.length && this.spans[last]!.outEnd < out + length) last++;
    const compressed = await this.ctx.source.read(this.index.layerDigest, this.spans[first]!.in, this.spans[last]!.inEnd, { background: true });
    return { compressed, bits: this.index.checkpoints[first]!.bits };
  }

  /** Takes the windows an access profile keeps for this layer: fetches starting at their points need no lead-in. */
  addProfileWindows(windows: ProfileWindows): void {
    const table = profileWindowTable(windows);
    for (const [out, w] of profileWindowsOf(windows, this.index.layerDigest)) {
      if (out <= 0 || out >= this.index.uncompressedSize || !this.format?.needsWindow) continue;
      const i = this.spanAt(out);
      if (this.spans[i]!.out === out && this.format.needsWindow(i)) this.ctx.extraWindows.set(i, { table, w });
    }
  }

  /** Loads a run of spans (what is cached or in flight is not fetched again); `background` unless a reader waits on it. */
  async loadRun(run: SpanRun, background = true): Promise<void> {
    await this.load(run.first, run.last, background);
  }

  /**
   * A run a replay has queued (it waits for a free request slot): a read that needs one of its
   * spans before then starts it at once, rather than fetching that span on its own and leaving
   * the run to start again around it (a second window or lead-in, and a round trip waited).
   */
  plan(run: SpanRun, start: (background: boolean) => void): void {
    for (let i = run.first; i <= run.last; i++) this.planned.set(i, start);
  }

  /** The run is on its way: reads no longer need to start it. */
  unplan(run: SpanRun): void {
    for (let i = run.first; i <= run.last; i++) this.planned.delete(i);
  }

  /** Compressed bytes of the spans strictly between `a` and `b`. */
  private gapBytes(a: number, b: number): number {
    return b === a + 1 ? 0 : this.spans[b - 1]!.inEnd - this.spans[a + 1]!.in;
  }

  private spanAt(offset: number): number {
    let lo = 0;
    let hi = this.spans.length - 1;
    if (hi < 0) throw new KrgoError('INDEX_INVALID', `${this.index.format} layers are not read by span`);
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.spans[mid]!.out <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private key(i: number): string {
    return `${this.index.layerDigest}:${i}`;
  }

  /** What span `i` is, in the layer's compressed and uncompressed streams: a disk file must be exactly that. */
  private binding(i: number): string {
    const span = this.spans[i]!;
    return `${this.index.format}:${span.out}-${span.outEnd}@${span.in}-${span.inEnd}`;
  }

  /** Span `i` if it is in memory, on its way, or on disk; never fetched. */
  private async findSpan(i: number): Promise<Buffer | undefined> {
    const known = this.cache.lookup(this.key(i));
    if (known) return known.catch(() => undefined);
    const kept = await this.cache.disk?.get(this.index.layerDigest, i, this.binding(i));
    if (kept) this.cache.add(this.key(i), kept);
    return kept;
  }

  /** Spans first..last, each fetched at most once however many readers want it. */
  private load(first: number, last: number, background = false): Promise<Buffer[]> {
    for (let i = first; i <= last; i++) {
      const span = this.spans[i]!;
      // A crafted layer (a gzip bomb: one deflate block that inflates to gigabytes) is refused
      // before anything is fetched or inflated: the read fails, the mount stays up.
      if (span.outEnd - span.out > MAX_SPAN_OUTPUT) {
        return Promise.reject(new KrgoError('TOO_LARGE', `span ${i} of layer ${this.index.layerDigest.slice(0, 19)} inflates to ${span.outEnd - span.out} bytes, more than the ${MAX_SPAN_OUTPUT} a read may inflate`));
      }
    }
    // Queued runs holding any of these spans start now (and put their spans in flight).
    if (this.planned.size) for (let i = first; i <= last; i++) this.planned.get(i)?.(background);
    const results: Promise<Buffer>[] = [];
    const missing: number[] = [];
    for (let i = first; i <= last; i++) {
      const known = this.cache.lookup(this.key(i));
      if (known) results[i - first] = known;
      else missing.push(i);
    }
    if (missing.length) {
      const pending = this.loadMissing(missing, background);
      missing.forEach((i, k) => (results[i - first] = this.cache.share(this.key(i), pending[k]!)));
    }
    return Promise.all(results);
  }

  /**
   * Each missing span from the disk cache when there, else one fetch per run of adjacent
   * missing spans. A span is ready as soon as its own bytes are decoded (the disk copy follows
   * in the background: a reader must not wait behind the disk's queue, and a write lost when
   * the process ends only costs a later fetch).
   */
  private loadMissing(missing: number[], background: boolean): Promise<Buffer>[] {
    const slots = new Map(missing.map((i) => [i, deferred<Buffer>()]));
    const format = this.format!;
    const disk = this.cache.disk;
    const deliver = (i: number, data: Buffer) => {
      const slot = slots.get(i);
      if (slot) slot.resolve(data);
      // Lead-in: decoded on the way to the run, kept for whoever reads there next.
      else this.cache.add(this.key(i), data);
      if (!(format instanceof ZstdWhole)) void disk?.put(this.index.layerDigest, i, this.binding(i), data).catch(this.onBackgroundError);
    };
    const work = async () => {
      const fromDisk = disk ? await Promise.all(missing.map((i) => disk.get(this.index.layerDigest, i, this.binding(i)))) : [];
      const runs: number[][] = [];
      missing.forEach((i, k) => {
        const kept = fromDisk[k];
        if (kept) return slots.get(i)!.resolve(kept);
        const run = runs[runs.length - 1];
        if (run && run[run.length - 1] === i - 1) run.push(i);
        else runs.push([i]);
      });
      await Promise.all(runs.map((run) => format.fetch(run, deliver, background).catch((err: unknown) => run.forEach((i) => slots.get(i)!.reject(err)))));
    };
    work().catch((err: unknown) => slots.forEach((slot) => slot.reject(err)));
    return missing.map((i) => slots.get(i)!.promise);
  }
}
