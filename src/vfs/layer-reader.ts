import { LRUCache } from 'lru-cache';
import { decompress as zstdDecompress } from 'fzstd';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { StargzChunk, TarEntry } from '../tar/tar-entry.js';
import { KrgoError } from '../errors.js';
import { extractGzipRange } from '../gzip/gzip-index.js';
import type { LayerIndex } from '../index/layer-index.js';
import type { RangeSource } from '../blob/range-source.js';
import type { DiskSpanStore } from '../blob/disk-span-store.js';
import { unpackWindow, windowFromBlob, windowRange } from '../index/window-table.js';

/** Decompressed spans of layers, shared by all readers of a mount: memory (bounded in bytes), then disk. */
export class SpanCache {
  readonly lru: LRUCache<string, Buffer>;
  readonly inflight = new Map<string, Promise<Buffer>>();

  constructor(
    maxBytes = 256 * 1024 * 1024,
    readonly disk?: DiskSpanStore,
  ) {
    this.lru = new LRUCache<string, Buffer>({ maxSize: maxBytes, sizeCalculation: (b) => Math.max(1, b.length) });
  }

  /** What is cached or already being fetched under `key`. */
  lookup(key: string): Promise<Buffer> | undefined {
    const cached = this.lru.get(key);
    return cached ? Promise.resolve(cached) : this.inflight.get(key);
  }

  /** Registers a fetch so concurrent readers share it; its result is cached, a failure is not. */
  share(key: string, fetch: Promise<Buffer>): Promise<Buffer> {
    this.inflight.set(key, fetch);
    fetch.then(
      (b) => this.lru.set(key, b),
      () => undefined,
    ).finally(() => this.inflight.delete(key));
    return fetch;
  }
}

/** Spans first..last of one layer, and where in a wish list they were first wanted. */
export interface SpanRun {
  first: number;
  last: number;
  order: number;
}

interface Span {
  /** Uncompressed range. */
  out: number;
  outEnd: number;
  /** Compressed range to fetch. */
  in: number;
  inEnd: number;
}

/** A deflate window: how far back a gzip stream may refer. */
const WINDOW_BYTES = 32 * 1024;
/** The most one gzip span may inflate to (seek points sit about 1 MiB apart; only a crafted stream has more between them). */
export const MAX_SPAN_OUTPUT = 64 * 1024 * 1024;
/** zstd layers have no seek points: decoded whole (once, into slices on disk), up to this. */
const MAX_WHOLE_LAYER_OUTPUT = 1024 * 1024 * 1024;

/** The last `n` bytes of `a` followed by `b`. */
function lastBytes(a: Buffer, b: Buffer, n: number): Buffer {
  if (b.length >= n) return b.subarray(b.length - n);
  return Buffer.concat([a.subarray(Math.max(0, a.length - (n - b.length))), b]);
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(err: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Spans of an uncompressed tar layer: fixed slices read directly. */
const TAR_SPAN = 1024 * 1024;

/**
 * Reads uncompressed byte ranges of one layer lazily: whole spans (between gzip checkpoints, or
 * fixed slices of a plain tar) are fetched with one Range request per run of missing spans,
 * decompressed, cached, and shared by concurrent readers; reading far into a span prefetches
 * the next. zstd layers have no seek points: the whole blob is fetched and decompressed once.
 */
export class LayerReader {
  private readonly spans: Span[];
  private memberStarts: number[] | undefined;
  /** A zstd layer being decoded whole (shared by every load meanwhile; dropped once its slices are stored). */
  private wholeZstd: Promise<Buffer> | undefined;
  /** End of the previous read: a read starting there is sequential and earns a read-ahead. */
  private lastEnd = -1;

  constructor(
    private readonly index: LayerIndex,
    private readonly source: RangeSource,
    private readonly cache: SpanCache,
    private readonly onBackgroundError: (err: unknown) => void = () => undefined,
  ) {
    this.spans = spansOf(index);
  }

  get spanCount(): number {
    return this.spans.length;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, this.index.uncompressedSize);
    if (end <= offset) return Buffer.alloc(0);
    const first = this.spanAt(offset);
    const last = this.spanAt(end - 1);
    const loaded = await this.load(first, last);
    const out = Buffer.allocUnsafe(end - offset);
    let filled = 0;
    for (let i = first; i <= last; i++) {
      const span = this.spans[i]!;
      const data = loaded[i - first]!;
      const from = Math.max(offset, span.out) - span.out;
      const to = Math.min(end, span.outEnd) - span.out;
      data.copy(out, filled, from, to);
      filled += to - from;
    }
    const lastSpan = this.spans[last]!;
    const sequential = offset === this.lastEnd;
    this.lastEnd = end;
    if (sequential && last + 1 < this.spans.length && end > lastSpan.out + (lastSpan.outEnd - lastSpan.out) / 2) {
      this.load(last + 1, last + 1).catch(this.onBackgroundError);
    }
    return out;
  }

  /** Fetches (or finds cached) the spans of [offset, offset+length), for callers that read ahead in bulk. */
  async fetchAhead(offset: number, length: number): Promise<void> {
    const end = Math.min(offset + length, this.index.uncompressedSize);
    if (end > offset) await this.load(this.spanAt(offset), this.spanAt(end - 1));
  }

  /** Bytes of one tar member of this layer, wherever its format keeps them. */
  readEntry(entry: TarEntry, offset: number, length: number): Promise<Buffer> {
    return entry.chunks ? this.readChunks(entry.chunks, offset, length) : this.read(entry.dataOffset + offset, Math.min(length, entry.size - offset));
  }

  /** Starts fetching the spans of [offset, offset+length) in the background (one request per run). */
  prefetch(offset: number, length: number): void {
    const end = Math.min(offset + length, this.index.uncompressedSize);
    if (end <= offset) return;
    this.load(this.spanAt(offset), this.spanAt(end - 1)).catch(this.onBackgroundError);
  }

  /**
   * The spans under many ranges, as runs of adjacent spans (at most `maxRun` long, so no single
   * response holds back the first bytes a reader waits for), each tagged with the `order` of
   * the first range that asked for one of its spans.
   */
  spanRuns(ranges: readonly { offset: number; length: number; order: number }[], maxRun = 4): SpanRun[] {
    const firstAsked = new Map<number, number>();
    for (const r of ranges) {
      const end = Math.min(r.offset + r.length, this.index.uncompressedSize);
      if (end <= r.offset) continue;
      for (let i = this.spanAt(r.offset), last = this.spanAt(end - 1); i <= last; i++) {
        if (!firstAsked.has(i) || firstAsked.get(i)! > r.order) firstAsked.set(i, r.order);
      }
    }
    const runs: SpanRun[] = [];
    for (const i of [...firstAsked.keys()].sort((a, b) => a - b)) {
      const run = runs[runs.length - 1];
      if (run && run.last === i - 1 && run.last - run.first + 1 < maxRun) {
        run.last = i;
        run.order = Math.min(run.order, firstAsked.get(i)!);
      } else runs.push({ first: i, last: i, order: firstAsked.get(i)! });
    }
    return runs;
  }

  /** Loads a run of spans (what is cached or in flight is not fetched again). */
  async loadRun(run: SpanRun): Promise<void> {
    await this.load(run.first, run.last);
  }

  private spanAt(offset: number): number {
    let lo = 0;
    let hi = this.spans.length - 1;
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

  /** Spans first..last, each fetched at most once however many readers want it. */
  private load(first: number, last: number): Promise<Buffer[]> {
    for (let i = first; i <= last; i++) {
      const span = this.spans[i]!;
      const limit = MAX_SPAN_OUTPUT;
      // A crafted layer (a gzip bomb: one deflate block that inflates to gigabytes) is refused
      // before anything is fetched or inflated: the read fails, the mount stays up.
      if (span.outEnd - span.out > limit) {
        return Promise.reject(new KrgoError('TOO_LARGE', `span ${i} of layer ${this.index.layerDigest.slice(0, 19)} inflates to ${span.outEnd - span.out} bytes, more than the ${limit} a read may inflate`));
      }
    }
    const results: Promise<Buffer>[] = [];
    const missing: number[] = [];
    for (let i = first; i <= last; i++) {
      const known = this.cache.lookup(this.key(i));
      if (known) results[i - first] = known;
      else missing.push(i);
    }
    if (missing.length) {
      const pending = this.loadMissing(missing);
      missing.forEach((i, k) => (results[i - first] = this.cache.share(this.key(i), pending[k]!)));
    }
    return Promise.all(results);
  }

  /** What span `i` is, in the layer's compressed and uncompressed streams: a disk file must be exactly that. */
  private spanBinding(i: number): string {
    const span = this.spans[i]!;
    return `${this.index.format}:${span.out}-${span.outEnd}@${span.in}-${span.inEnd}`;
  }

  /**
   * Each missing span from the disk cache when there, else one request per run of adjacent
   * missing spans. A span is ready as soon as its own bytes are in (and on disk): a reader of
   * the first span of a long run does not wait for the rest of the response.
   */
  private loadMissing(missing: number[]): Promise<Buffer>[] {
    const slots = missing.map(() => deferred<Buffer>());
    const slotOf = new Map(missing.map((i, k) => [i, slots[k]!]));
    const disk = this.cache.disk;
    const work = async () => {
      const fromDisk = disk ? await Promise.all(missing.map((i) => disk.get(this.index.layerDigest, i, this.spanBinding(i)))) : [];
      const runs: number[][] = [];
      if (this.index.format === 'zstd') {
        let absent = missing.filter((_i, k) => !fromDisk[k]);
        missing.forEach((_i, k) => fromDisk[k] && slots[k]!.resolve(fromDisk[k]!));
        // A decode that finished while the disk was looked at has stored every slice by now
        // (wholeZstd is dropped only then): look again before decoding the layer a second time.
        if (absent.length > 0 && !this.wholeZstd && disk) {
          const again = await Promise.all(absent.map((i) => disk.get(this.index.layerDigest, i, this.spanBinding(i))));
          absent.forEach((i, k) => again[k] && slotOf.get(i)!.resolve(again[k]!));
          absent = absent.filter((_i, k) => !again[k]);
        }
        if (absent.length === 0) return;
        const whole = await (this.wholeZstd ??= this.decodeWholeZstd());
        // Copies: a slice must not keep the whole decoded layer alive in the memory cache.
        for (const i of absent) slotOf.get(i)!.resolve(Buffer.from(whole.subarray(this.spans[i]!.out, this.spans[i]!.outEnd)));
        return;
      }
      missing.forEach((i, k) => {
        const kept = fromDisk[k];
        if (kept) return slots[k]!.resolve(kept);
        const run = runs[runs.length - 1];
        if (run && run[run.length - 1] === i - 1) run.push(i);
        else runs.push([i]);
      });
      await Promise.all(
        runs.map((run) =>
          this.fetchRun(run, async (k, data) => {
            // The reader first; the disk copy follows in the background (its writes are queued,
            // and a reader must not wait behind them; a write lost when the process ends only
            // costs a later fetch).
            slotOf.get(run[k]!)!.resolve(data);
            void disk?.put(this.index.layerDigest, run[k]!, this.spanBinding(run[k]!), data).catch(this.onBackgroundError);
          }).catch((err: unknown) => run.forEach((i) => slotOf.get(i)!.reject(err))),
        ),
      );
    };
    work().catch((err: unknown) => slots.forEach((slot) => slot.reject(err)));
    return slots.map((slot) => slot.promise);
  }

  /**
   * A zstd layer, fetched and decoded once, whole; every slice goes to the disk cache, so later
   * reads (this mount's or another's) are served from disk instead of decoding it again.
   */
  private async decodeWholeZstd(): Promise<Buffer> {
    if (this.index.uncompressedSize > MAX_WHOLE_LAYER_OUTPUT) {
      throw new KrgoError('TOO_LARGE', `zstd layer ${this.index.layerDigest.slice(0, 19)} decodes to ${this.index.uncompressedSize} bytes, more than the ${MAX_WHOLE_LAYER_OUTPUT} a zstd layer may (it has no seek points)`);
    }
    let whole: Buffer;
    try {
      whole = this.decode(await this.source.read(this.index.layerDigest, 0, this.index.compressedSize));
      if (whole.length !== this.index.uncompressedSize) {
        throw new KrgoError('BAD_TAR', `layer ${this.index.layerDigest}: decoded to ${whole.length} bytes, expected ${this.index.uncompressedSize}`);
      }
    } catch (err) {
      this.wholeZstd = undefined;
      throw err;
    }
    // The slices go to disk after the readers have theirs; the decoded layer is shared until then.
    void (async () => {
      const disk = this.cache.disk;
      for (let i = 0; disk && i < this.spans.length; i++) {
        const span = this.spans[i]!;
        await disk.put(this.index.layerDigest, i, this.spanBinding(i), whole.subarray(span.out, span.outEnd)).catch(this.onBackgroundError);
      }
    })().finally(() => (this.wholeZstd = undefined));
    return whole;
  }

  /**
   * One Range request for a run of adjacent spans, each span decoded and handed to `deliver` as
   * soon as its compressed bytes are in. A gzip run inflates from its first seek point, whose
   * window is fetched alongside (in parallel) unless the index has its windows at hand; each
   * later span resumes with the last 32 KiB the one before it produced, which is its window.
   */
  private async fetchRun(run: number[], deliver: (k: number, data: Buffer) => Promise<void>): Promise<void> {
    const spans = run.map((i) => this.spans[i]!);
    const first = spans[0]!;
    const last = spans[spans.length - 1]!;
    const gzip = this.index.format === 'gzip';
    let window: Buffer | undefined;
    let next = 0;
    let progress: { data: Buffer; filled: number } | undefined;
    const delivered: Promise<void>[] = [];
    const decodeArrived = () => {
      if (!progress || (gzip && !window)) return;
      const { data, filled } = progress;
      while (next < spans.length && filled >= spans[next]!.inEnd - first.in) {
        const span = spans[next]!;
        const slice = data.subarray(span.in - first.in, span.inEnd - first.in);
        const plain = this.checked(span, gzip ? extractGzipRange(this.index.checkpoints[run[next]!]!, window!, slice, span.out, span.outEnd - span.out) : this.decode(slice));
        if (gzip) window = lastBytes(window!, plain, WINDOW_BYTES);
        delivered.push(deliver(next, plain));
        next++;
      }
    };
    const windowFetch = gzip
      ? this.window(run[0]!).then((w) => {
          window = w;
          decodeArrived();
        })
      : Promise.resolve();
    const [compressed] = await Promise.all([
      this.source.read(this.index.layerDigest, first.in, last.inEnd, (data, filled) => {
        progress = { data, filled };
        decodeArrived();
      }),
      windowFetch,
    ]);
    progress = { data: compressed, filled: compressed.length };
    decodeArrived();
    if (next < spans.length) throw new KrgoError('BAD_TAR', `layer ${this.index.layerDigest}: range ${first.in}-${last.inEnd} ended before span ${run[next]}`);
    await Promise.all(delivered);
  }

  private checked(span: Span, data: Buffer): Buffer {
    if (data.length !== span.outEnd - span.out) {
      throw new KrgoError('BAD_TAR', `layer ${this.index.layerDigest}: span at ${span.out} decoded to ${data.length} bytes, expected ${span.outEnd - span.out}`);
    }
    return data;
  }

  private decode(slice: Buffer): Buffer {
    switch (this.index.format) {
      case 'tar':
        return slice;
      case 'zstd': {
        const plain = zstdDecompress(slice);
        return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
      }
      default:
        throw new KrgoError('INDEX_INVALID', `${this.index.format} layers are not read by plain span`);
    }
  }

  /**
   * The window of seek point `i`: from the index's blob when at hand, else fetched by range from
   * the windows blob in the registry (kept in the span caches like a span), checked either way.
   */
  private window(i: number): Promise<Buffer> {
    // Nothing comes before the start of the stream: no window to fetch.
    if (this.index.checkpoints[i]!.uncompressedOffset === 0) return Promise.resolve(Buffer.alloc(0));
    const table = this.index.windows;
    const blob = table.blob;
    if (blob) return Promise.resolve(windowFromBlob(table, blob, i));
    const key = `${table.digest}:w${i}`;
    const known = this.cache.lookup(key);
    if (known) return known;
    const fetch = (async () => {
      const kept = await this.cache.disk?.get(table.digest, i, 'window');
      if (kept) {
        try {
          return unpackWindow(table, i, kept);
        } catch {
          // Not the window the index names: fetched again below.
        }
      }
      const [start, end] = windowRange(table, i);
      const packed = await this.source.read(table.digest, start, end);
      const window = unpackWindow(table, i, packed);
      await this.cache.disk?.put(table.digest, i, 'window', packed).catch(this.onBackgroundError);
      return window;
    })();
    return this.cache.share(key, fetch);
  }

  /**
   * eStargz: bytes [fileOffset, fileOffset+length) of a file from its chunks. Each chunk's gzip
   * member is fetched once (members end where the next begins), inflated, cached, and its
   * chunk checked against the TOC's chunk digest before use.
   */
  async readChunks(chunks: readonly StargzChunk[], fileOffset: number, length: number): Promise<Buffer> {
    const end = fileOffset + length;
    const wanted = chunks.filter((c) => c.fileOffset < end && c.fileOffset + c.size > fileOffset);
    const parts = await Promise.all(
      wanted.map(async (c) => {
        const data = await this.chunk(c);
        return data.subarray(Math.max(fileOffset, c.fileOffset) - c.fileOffset, Math.min(end, c.fileOffset + c.size) - c.fileOffset);
      }),
    );
    return Buffer.concat(parts);
  }

  private memberEnd(memberOffset: number): number {
    this.memberStarts ??= [...new Set([...this.index.entries.flatMap((e) => (e.chunks ?? []).map((c) => c.memberOffset)), this.index.tocOffset ?? this.index.compressedSize])].sort((a, b) => a - b);
    const starts = this.memberStarts;
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= memberOffset) lo = mid + 1;
      else hi = mid;
    }
    return starts[lo] ?? this.index.compressedSize;
  }

  private chunk(c: StargzChunk): Promise<Buffer> {
    const key = `${this.index.layerDigest}:c${c.memberOffset}:${c.innerOffset}:${c.size}`;
    const known = this.cache.lookup(key);
    if (known) return known;
    const fetch = (async () => {
      const end = c.memberOffset === this.index.tocOffset ? this.index.compressedSize : this.memberEnd(c.memberOffset);
      const member = gunzipSync(await this.source.read(this.index.layerDigest, c.memberOffset, end));
      const data = member.subarray(c.innerOffset, c.innerOffset + c.size);
      if (data.length !== c.size) throw new KrgoError('BAD_TAR', `layer ${this.index.layerDigest}: chunk at member ${c.memberOffset} is short`);
      if (c.digest && c.digest !== `sha256:${createHash('sha256').update(data).digest('hex')}`) {
        throw new KrgoError('DIGEST_MISMATCH', `layer ${this.index.layerDigest}: chunk at member ${c.memberOffset} does not match its TOC digest ${c.digest}`);
      }
      return Buffer.from(data);
    })();
    return this.cache.share(key, fetch);
  }
}

function spansOf(index: LayerIndex): Span[] {
  const size = index.uncompressedSize;
  if (index.format === 'estargz') return [];
  if (index.format === 'zstd') {
    // No seek points: the blob is decoded once, whole, and kept as slices like a plain tar's.
    const spans: Span[] = [];
    for (let out = 0; out < Math.max(size, 1); out += TAR_SPAN) spans.push({ out, outEnd: Math.min(out + TAR_SPAN, size), in: 0, inEnd: index.compressedSize });
    return spans;
  }
  if (index.format === 'tar') {
    const spans: Span[] = [];
    for (let out = 0; out < Math.max(size, 1); out += TAR_SPAN) spans.push({ out, outEnd: Math.min(out + TAR_SPAN, size), in: out, inEnd: Math.min(out + TAR_SPAN, size) });
    return spans;
  }
  const cps = index.checkpoints;
  if (cps.length === 0) throw new KrgoError('INDEX_INVALID', `gzip layer ${index.layerDigest} has no checkpoints`);
  return cps.map((cp, i) => {
    const next = cps[i + 1];
    return {
      out: cp.uncompressedOffset,
      outEnd: next ? next.uncompressedOffset : size,
      in: cp.compressedOffset - (cp.bits ? 1 : 0),
      inEnd: next ? Math.min(next.compressedOffset + 1, index.compressedSize) : index.compressedSize,
    };
  });
}
