import type { Inode, MergedTree } from './merged-tree.js';
import type { LayerReader, SpanRun } from './layer-reader.js';
import type { PlannedRead } from './access-profile.js';
import { limitConcurrency } from '../util/concurrency.js';

export const FIRST_READ_PREFETCH_BYTES = 32 * 1024 * 1024;

/** File bytes of a merged tree, from whichever layer (and format) holds them. */
export class ImageReader {
  constructor(
    private readonly tree: MergedTree,
    private readonly readers: LayerReader[],
  ) {}

  /** `readAhead: false`: nothing past the read is wanted (a replayed profile fetched what the file needs). */
  read(inode: Inode, offset: number, length: number, readAhead = true): Promise<Buffer> {
    const plan = this.tree.readPlan(inode, offset, length);
    if (!plan) return Promise.resolve(Buffer.alloc(0));
    const reader = this.readers[plan.layer]!;
    if (plan.chunks) return reader.readChunks(plan.chunks, plan.offset, plan.length);
    // A sequential reader's read-ahead stops at the end of its file.
    return reader.read(plan.offset, plan.length, readAhead ? plan.offset - offset + inode.size : 0);
  }

  /**
   * Starts fetching a file in the background (one request per run of spans), its first
   * FIRST_READ_PREFETCH_BYTES: a huge file (or a gzip bomb's 10 GiB of zeros) is read as it is
   * asked for, not pulled into memory and the disk cache because one byte of it was read.
   */
  prefetch(inode: Inode): void {
    const plan = this.tree.readPlan(inode, 0, Math.min(inode.size, FIRST_READ_PREFETCH_BYTES));
    if (!plan) return;
    const reader = this.readers[plan.layer]!;
    if (plan.chunks) reader.readChunks(plan.chunks, 0, plan.length).catch(() => undefined);
    else reader.prefetch(plan.offset, plan.length);
  }

  /**
   * Fetches files found ahead together (a program's imports, say), each up to
   * FIRST_READ_PREFETCH_BYTES: planned as one replay, so neighbouring files share requests
   * instead of each costing one of its own (and a window).
   */
  prefetchFiles(inodes: readonly Inode[], parallel?: number): Promise<void> {
    return this.prefetchReads(
      inodes.map((inode) => ({ inode, offset: 0, length: Math.min(inode.size, FIRST_READ_PREFETCH_BYTES) })),
      parallel,
    );
  }

  /**
   * Fetches everything a list of reads needs, as few requests as adjacency allows, at most
   * `parallel` in flight, earliest-wanted first; resolves when all is loaded or has failed
   * (failures are left to the reads that will meet them).
   */
  async prefetchReads(reads: readonly PlannedRead[], parallel = 6): Promise<void> {
    const perLayer = new Map<number, { offset: number; length: number; order: number }[]>();
    const chunked: Promise<unknown>[] = [];
    reads.forEach((r, order) => {
      const plan = this.tree.readPlan(r.inode, r.offset, r.length);
      if (!plan) return;
      if (plan.chunks) chunked.push(this.readers[plan.layer]!.readChunks(plan.chunks, plan.offset, plan.length).catch(() => undefined));
      else {
        let ranges = perLayer.get(plan.layer);
        if (!ranges) perLayer.set(plan.layer, (ranges = []));
        ranges.push({ offset: plan.offset, length: plan.length, order });
      }
    });
    const runs: { reader: LayerReader; run: SpanRun }[] = [];
    for (const [layer, ranges] of perLayer) {
      const reader = this.readers[layer]!;
      for (const run of reader.spanRuns(ranges)) runs.push({ reader, run });
    }
    runs.sort((a, b) => a.run.order - b.run.order);
    const limit = limitConcurrency(parallel);
    const queued = runs.map(({ reader, run }) => {
      let started: Promise<void> | undefined;
      const start = () => {
        if (started) return started;
        reader.unplan(run);
        return (started = reader.loadRun(run));
      };
      // A read reaching a queued run starts it ahead of its turn (LayerReader.plan).
      reader.plan(run, () => void start().catch(() => undefined));
      return limit(start).catch(() => undefined);
    });
    await Promise.all([...chunked, ...queued]);
  }
}
