import type { Inode, MergedTree, ReadSpan } from './merged-tree.js';
import type { LayerReader, SpanRun } from './layer-reader.js';
import type { AccessProfile, PlannedRead } from './access-profile.js';
import { profileInLayers, type LayerRange } from './profile-in-layers.js';
import type { LayerIndex } from '../index/layer-index.js';
import { limitConcurrency } from '../util/concurrency.js';
import { joinPieces } from '../util/join-pieces.js';

export const FIRST_READ_PREFETCH_BYTES = 32 * 1024 * 1024;

/** File bytes of a merged tree, from whichever layer (and format) holds them. */
export class ImageReader {
  constructor(
    private readonly tree: MergedTree,
    private readonly readers: LayerReader[],
  ) {}

  /**
   * `readAhead: false`: nothing past the read is wanted (a replayed profile fetched what the file
   * needs). Within one span, a view of the cached span: not to be written to.
   */
  async read(inode: Inode, offset: number, length: number, readAhead = true): Promise<Buffer> {
    const parts = await this.readParts(inode, offset, length, readAhead);
    return joinPieces(parts);
  }

  /** read()'s bytes in pieces, views of cached spans (LayerReader.readParts): not to be written to. */
  async readParts(inode: Inode, offset: number, length: number, readAhead = true): Promise<Buffer[]> {
    const plan = this.tree.readPlan(inode, offset, length);
    if (!plan) return [];
    const reader = this.readers[plan.layer]!;
    if (plan.chunks) return [await reader.readChunks(plan.chunks, plan.offset, plan.length)];
    // A sequential reader's read-ahead stops at the end of its file.
    return reader.readParts(plan.offset, plan.length, readAhead ? plan.offset - offset + inode.size : 0);
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
  async prefetchReads(reads: readonly PlannedRead[], parallel = defaultParallel(this.readers)): Promise<void> {
    const { ranges, chunked } = this.layerRanges(reads);
    const runs = fetchLayerRanges(ranges, parallel);
    const byChunks = chunked.map(({ reader, span }) => reader.readChunks(span.chunks!, span.offset, span.length).catch(() => undefined));
    await Promise.all([...byChunks, runs]);
  }

  /**
   * Where reads lie in the layers: per reader (one per blob, however often the manifest names
   * it), their ranges tagged with their place in `reads`; eStargz reads apart, as they are read
   * by their chunks.
   */
  layerRanges(reads: readonly PlannedRead[]): { ranges: Map<LayerReader, LayerRange[]>; chunked: { reader: LayerReader; span: ReadSpan }[] } {
    const ranges = new Map<LayerReader, LayerRange[]>();
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

/** All at once when the source batches background reads into shared requests, else six runs at a time. */
function defaultParallel(readers: readonly LayerReader[]): number {
  return readers.some((r) => r.batchesReads) ? Number.POSITIVE_INFINITY : 6;
}

/**
 * Fetches uncompressed ranges of layers as runs of spans (as few requests as adjacency allows),
 * at most `parallel` in flight, earliest-wanted first. A read reaching a run still queued starts
 * it ahead of its turn. Resolves when all is loaded or has failed (failures are left to the
 * reads that will meet them).
 */
export async function fetchLayerRanges(ranges: ReadonlyMap<LayerReader, readonly LayerRange[]>, parallel = defaultParallel([...ranges.keys()])): Promise<void> {
  const runs: { reader: LayerReader; run: SpanRun }[] = [];
  for (const [reader, wanted] of ranges) {
    for (const run of reader.spanRuns(wanted)) runs.push({ reader, run });
  }
  runs.sort((a, b) => a.run.order - b.run.order);
  const limit = limitConcurrency(parallel);
  await Promise.all(
    runs.map(({ reader, run }) => {
      let started: Promise<void> | undefined;
      const start = (background: boolean) => {
        if (started) return started;
        reader.unplan(run);
        return (started = reader.loadRun(run, background));
      };
      reader.plan(run, (background) => void start(background).catch(() => undefined));
      return limit(() => start(true)).catch(() => undefined);
    }),
  );
}

/**
 * A profile's fetches as the layer indexes alone place its files (profileInLayers), for a mount
 * to start before its tree is built; `readers` and `indexes` by manifest position.
 */
export function prefetchProfileInLayers(readers: readonly LayerReader[], indexes: readonly LayerIndex[], profile: AccessProfile): Promise<void> {
  const ranges = new Map<LayerReader, LayerRange[]>();
  profileInLayers(indexes, profile).forEach((found, layer) => {
    const reader = readers[layer]!;
    if (found.length) ranges.set(reader, [...(ranges.get(reader) ?? []), ...found]);
  });
  return fetchLayerRanges(ranges);
}
