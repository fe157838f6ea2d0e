import type { Digest } from '../digest.js';
import type { RegistryClient } from '../registry/client.js';
import { deferred } from '../util/deferred.js';
import { traceFile } from '../util/trace-file.js';

export interface RangeReadOptions {
  /**
   * Told as the bytes come in (the buffer being filled, and how much of it is), so a caller can
   * use the head of a long range before its end arrives.
   */
  onProgress?: (data: Buffer, filled: number) => void;
  /** Nobody waits on it yet (a replay, a prefetch, a read-ahead): it may wait to share a request. */
  background?: boolean;
}

/** Bytes [start, end) of a blob. */
export interface BlobRange {
  digest: Digest;
  start: number;
  end: number;
}

/** Byte ranges of blobs, from wherever they live. */
export interface RangeSource {
  read(digest: Digest, start: number, end: number, options?: RangeReadOptions): Promise<Buffer>;
  /** True when background reads of a blob issued together go out as one request: a caller may issue all it knows at once. */
  readonly batches?: boolean;
}

/** Background requests in flight at once; the reads that wait meanwhile share the next ones. */
const BACKGROUND_REQUESTS = 6;
/**
 * Planned reads are asked for in stretches of this many bytes, one request per blob in each: the
 * order they are wanted in is kept to within a stretch, at a few requests a megabyte.
 */
const ORDERED_STRETCH_BYTES = 1024 * 1024;
/** Ranges in one request, at most (a `Range` header of ~1.5 kB: servers limit header sizes). */
const MAX_RANGES_PER_REQUEST = 64;

/** Whether `read` may go in the request for `batch`: the same blob, room left, no range it overlaps. */
function joinsBatch(batch: readonly QueuedRead[], read: QueuedRead): boolean {
  return batch[0]!.digest === read.digest && batch.length < MAX_RANGES_PER_REQUEST && !batch.some((r) => r.start < read.end && read.start < r.end);
}

/** Bytes asked for before anyone reads them (an access profile's planned fetches). */
interface EarlyRead {
  start: number;
  end: number;
  done: Promise<Buffer>;
  /** What has arrived so far (the read's own buffer, `filled` bytes of it). */
  data?: Buffer;
  filled: number;
  /** Readers that took it, told of each arrival. */
  readers: ((data: Buffer, filled: number) => void)[];
}

interface QueuedRead {
  digest: Digest;
  start: number;
  end: number;
  onProgress: ((data: Buffer, filled: number) => void) | undefined;
  result: ReturnType<typeof deferred<Buffer>>;
}

/**
 * HTTP Range reads against the registry, counting what each layer cost (for `krgo status`).
 * A read someone waits on goes out at once. Background reads queue behind at most
 * BACKGROUND_REQUESTS requests; when one ends, the oldest waiting read goes out together with
 * every other read of its blob waiting then, as one multi-range request (a replay of 40 runs
 * over 4 blobs costs a handful of round trips, not 40). A registry that does not answer
 * multi-range requests in parts is asked one range at a time from then on.
 */
export class RegistryRangeSource implements RangeSource {
  readonly fetched = new Map<Digest, number>();
  requests = 0;
  private singleRanges = false;
  private readonly queue: QueuedRead[] = [];
  private inFlight = 0;
  private pumpScheduled = false;
  private readonly early = new Map<Digest, EarlyRead[]>();

  /** KRGO_TRACE_RANGES=FILE: one line per range read (ms since start, blob, range, ms taken, ranges in its request), to study what a workload fetched. */
  private readonly trace = traceFile('KRGO_TRACE_RANGES');

  constructor(private readonly client: RegistryClient) {}

  get batches(): boolean {
    return !this.singleRanges;
  }

  /**
   * Asks for ranges of blobs before anyone reads them, and sends the requests now (not at the
   * next turn of the event loop: the caller may hold the thread a while): the first read that
   * lies within one then takes its bytes as they come instead of asking again. For a few hundred
   * ranges planned ahead (an access profile's), in the order they will be read: the requests go
   * out in that order on one pipelined connection (`inOrder`), a request for each stretch of
   * ranges of one blob, so the first wanted are the first in instead of sharing the link with
   * the last. Each range serves one read.
   */
  prefetch(ranges: readonly BlobRange[]): void {
    let stretch: QueuedRead[] = [];
    let bytes = 0;
    const sendStretch = () => {
      for (const batch of this.batchesOf(stretch)) void this.send(batch, true);
      stretch = [];
      bytes = 0;
    };
    for (const { digest, start, end } of ranges) {
      stretch.push(this.readAhead(digest, start, end));
      bytes += end - start;
      if (bytes >= ORDERED_STRETCH_BYTES) sendStretch();
    }
    sendStretch();
  }

  /** Reads as requests: one per blob (in the order of its first read), of ranges that do not overlap. */
  private batchesOf(reads: QueuedRead[]): QueuedRead[][] {
    const batches: QueuedRead[][] = [];
    for (const read of reads) {
      const batch = this.singleRanges ? undefined : batches.find((b) => joinsBatch(b, read));
      if (batch) batch.push(read);
      else batches.push([read]);
    }
    return batches;
  }

  /** A read of [start, end) that the first read within it takes over, made now and sent by the caller. */
  private readAhead(digest: Digest, start: number, end: number): QueuedRead {
    const result = deferred<Buffer>();
    const early: EarlyRead = { start, end, filled: 0, readers: [], done: result.promise };
    const read: QueuedRead = {
      digest,
      start,
      end,
      onProgress: (data, filled) => {
        early.data = data;
        early.filled = filled;
        for (const reader of early.readers) reader(data, filled);
      },
      result,
    };
    // A failed one is dropped: whoever reads there asks again (and meets the failure, if it lasts).
    early.done.catch(() => this.takeEarly(digest, start, end, early));
    const reads = this.early.get(digest);
    if (reads) reads.push(early);
    else this.early.set(digest, [early]);
    return read;
  }

  read(digest: Digest, start: number, end: number, options: RangeReadOptions = {}): Promise<Buffer> {
    const early = this.takeEarly(digest, start, end);
    if (early) return this.readEarly(early, digest, start, end, options);
    if (!options.background || this.singleRanges) return this.readOne(digest, start, end, options.onProgress);
    const read: QueuedRead = { digest, start, end, onProgress: options.onProgress, result: deferred<Buffer>() };
    this.queue.push(read);
    // Reads issued in the same turn of the event loop (a replay starting) join the first request.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
    return read.result.promise;
  }

  /** The early read that holds [start, end) (or exactly `which`), no longer offered to others. */
  private takeEarly(digest: Digest, start: number, end: number, which?: EarlyRead): EarlyRead | undefined {
    const reads = this.early.get(digest);
    const at = reads?.findIndex((r) => (which ? r === which : r.start <= start && end <= r.end)) ?? -1;
    if (at < 0) return undefined;
    const [taken] = reads!.splice(at, 1);
    if (reads!.length === 0) this.early.delete(digest);
    return taken;
  }

  /** [start, end) from an early read that holds it: its bytes as they arrive, or a read of its own if it fails. */
  private readEarly(early: EarlyRead, digest: Digest, start: number, end: number, options: RangeReadOptions): Promise<Buffer> {
    const offset = start - early.start;
    const length = end - start;
    const { onProgress } = options;
    if (onProgress) {
      const forward = (data: Buffer, filled: number) => {
        const have = Math.min(filled - offset, length);
        if (have > 0) onProgress(data.subarray(offset, offset + length), have);
      };
      early.readers.push(forward);
      if (early.data) forward(early.data, early.filled);
    }
    return early.done.then(
      (data) => data.subarray(offset, offset + length),
      () => this.read(digest, start, end, options),
    );
  }

  private pump(): void {
    while (this.inFlight < BACKGROUND_REQUESTS && this.queue.length) {
      const batch = this.takeBatch();
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** The oldest queued read and, unless ranges go one at a time, the other queued reads of its blob that do not overlap those taken. */
  private takeBatch(): QueuedRead[] {
    const first = this.queue.shift()!;
    const batch = [first];
    if (this.singleRanges) return batch;
    for (let i = 0; i < this.queue.length && batch.length < MAX_RANGES_PER_REQUEST; ) {
      const read = this.queue[i]!;
      if (joinsBatch(batch, read)) {
        batch.push(read);
        this.queue.splice(i, 1);
      } else i++;
    }
    return batch;
  }

  /** One request for the batch's ranges (`inOrder`: behind the earlier such requests); what it did not bring is read range by range. */
  private async send(batch: QueuedRead[], inOrder = false): Promise<void> {
    if (batch.length === 1 && !inOrder) {
      await Promise.all(batch.map((r) => this.readOne(r.digest, r.start, r.end, r.onProgress).then(r.result.resolve, r.result.reject)));
      return;
    }
    const digest = batch[0]!.digest;
    const buffers = batch.map((r) => Buffer.allocUnsafe(r.end - r.start));
    const filled = batch.map(() => 0);
    const done = batch.map(() => false);
    this.requests++;
    const began = performance.now();
    try {
      const answer = await this.client.readRanges(digest, batch, (k, chunk) => {
        const read = batch[k]!;
        if (done[k]) return;
        chunk.copy(buffers[k]!, filled[k]);
        filled[k]! += chunk.length;
        try {
          read.onProgress?.(buffers[k]!, filled[k]!);
        } catch (err) {
          // Its reader gave up on these bytes (bad data): that read fails, the others go on.
          done[k] = true;
          read.result.reject(err);
          return;
        }
        // Each range is handed over as soon as it is in, not when the whole answer is.
        if (filled[k] === read.end - read.start) {
          done[k] = true;
          this.account(digest, read.start, read.end, began, batch.length);
          read.result.resolve(buffers[k]!);
        }
      }, inOrder ? { inOrder } : {});
      if (!answer.multipart && done.includes(false)) this.singleRanges = true;
    } catch {
      // What did not arrive is read range by range below (with the retries single reads have).
    }
    await Promise.all(batch.map((r, k) => (done[k] ? undefined : this.readOne(r.digest, r.start, r.end, r.onProgress).then(r.result.resolve, r.result.reject))));
  }

  private async readOne(digest: Digest, start: number, end: number, onProgress?: (data: Buffer, filled: number) => void): Promise<Buffer> {
    this.requests++;
    const began = performance.now();
    const bytes = await this.client.readRange(digest, start, end - start, onProgress);
    this.account(digest, start, end, began, 1);
    return bytes;
  }

  private account(digest: Digest, start: number, end: number, began: number, rangesInRequest: number): void {
    this.fetched.set(digest, (this.fetched.get(digest) ?? 0) + end - start);
    this.trace?.(`${began.toFixed(0)} ${digest.slice(7, 19)} ${start}-${end} ${end - start} ${(performance.now() - began).toFixed(0)} ${rangesInRequest}`);
  }
}
