import type { Inode, MergedTree, ReadSpan } from './merged-tree.js';
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
   * `background: false` when a read of the file's head is about to wait on it (its first read):
   * the fetch then goes out at once, not queued behind other background requests.
   */
  prefetch(inode: Inode, background = true): void {
    const plan = this.tree.readPlan(inode, 0, Math.min(inode.size, FIRST_READ_PREFETCH_BYTES));
    if (!plan) return;
    const reader = this.readers[plan.layer]!;
    if (plan.chunks) reader.readChunks(plan.chunks, 0, plan.length).catch(() => undefined);
    else reader.prefetch(plan.offset, plan.length, background);
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
  async prefetchReads(reads: readonly PlannedRead[], parallel = this.readers.some((r) => r.batchesReads) ? Number.POSITIVE_INFINITY : 6): Promise<void> {
    const { ranges, chunked } = this.layerRanges(reads);
    const runs: { reader: LayerReader; run: SpanRun }[] = [];
    for (const [reader, wanted] of ranges) {
      for (const run of reader.spanRuns(wanted)) runs.push({ reader, run });
    }
    runs.sort((a, b) => a.run.order - b.run.order);
    const limit = limitConcurrency(parallel);
    const queued = runs.map(({ reader, run }) => {
      let started: Promise<void> | undefined;
      const start = (background: boolean) => {
        if (started) return started;
        reader.unplan(run);
        return (started = reader.loadRun(run, background));
      };
      // A read reaching a queued run starts it ahead of its turn (LayerReader.plan).
      reader.plan(run, (background) => void start(background).catch(() => undefined));
      return limit(() => start(true)).catch(() => undefined);
    });
    const byChunks = chunked.map(({ reader, span }) => reader.readChunks(span.chunks!, span.offset, span.length).catch(() => undefined));
    await Promise.all([...byChunks, ...queued]);
  }

  /**
   * Where reads lie in the layers: per reader (one per blob, however often the manifest names
   * it), their ranges tagged with their place in `reads`; eStargz reads apart, as they are read
   * by their chunks.
   */
  layerRanges(reads: readonly PlannedRead[]): { ranges: Map<LayerReader, { offset: number; length: number; order: number }[]>; chunked: { reader: LayerReader; span: ReadSpan }[] } {
    const ranges = new Map<LayerReader, { offset: number; length: number; order: number }[]>();
    const chunked: { reader: LayerReader; span: ReadSpan }[] = [];
    reads.forEach((r, order) => {
      const span = this.tree.readPlan(r.inode, r.offset, r.length);
      if (!span) return;
      const reader = this.readers[span.layer]!;
      if (span.chunks) return void chunked.push({ reader, span });
      let wanted = ranges.get(reader);
      if (!wanted) ranges.set(reader, (wanted = []));
      wanted.push({ offset: span.offset, length: span.length, order });
    });
    return { ranges, chunked };
  }
}
