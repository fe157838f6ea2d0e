import type { LayerIndex } from '../index/layer-index.js';
import type { PreparedImage } from '../remote/prepare-image.js';
import type { LazyImage } from '../remote/lazy-image.js';
import type { TarEntry } from '../tar/tar-entry.js';
import type { EntryData } from '../tar/tar-parser.js';
import type { LayerReader } from '../vfs/layer-reader.js';
import { LayerBranchWriter, layerDiffIds } from '../git/layer-branches.js';
import { limitConcurrency } from '../util/concurrency.js';
import { LayerApplier } from './layer-applier.js';
import type { MaterializeStats } from './materialize-tree.js';
import type { RootfsTarget } from './rootfs-target.js';

const PIECE = 8 * 1024 * 1024;
/** Uncompressed bytes fetched per read-ahead request: large enough for few round trips, small enough to bound memory. */
const WINDOW = 16 * 1024 * 1024;

function entryData(reader: LayerReader, entry: TarEntry, onBytes: (n: number) => void): EntryData {
  return {
    async *chunks() {
      for (let offset = 0; offset < entry.size; offset += PIECE) {
        const data = await reader.readEntry(entry, offset, Math.min(PIECE, entry.size - offset));
        onBytes(data.length);
        yield data;
      }
    },
  };
}

/** Read-ahead jobs for every layer, in layer order: windows of spans, or files for eStargz (read by chunk). */
function readAheadJobs(indexes: readonly LayerIndex[], readers: readonly LayerReader[]): (() => Promise<unknown>)[] {
  return indexes.flatMap((index, k) => {
    const reader = readers[k]!;
    if (index.format === 'estargz') return index.entries.filter((e) => e.type === 'file' && e.size > 0).map((e) => () => reader.readEntry(e, 0, e.size));
    const jobs: (() => Promise<unknown>)[] = [];
    for (let offset = 0; offset < index.uncompressedSize; offset += WINDOW) jobs.push(() => reader.fetchAhead(offset, WINDOW));
    return jobs;
  });
}

/**
 * `materialize -g`: the layers applied one by one from their indexes, as `pull -g` applies
 * their tars (same rules engine, same branches), with the bytes fetched ahead in parallel
 * (bounded) while the layers are written in order; spans already cached are not fetched again.
 */
export async function materializeBranches(
  prepared: PreparedImage,
  lazy: LazyImage,
  target: RootfsTarget,
  options: { concurrency?: number; warn: (message: string) => void; onBytes?: (bytes: number) => void },
): Promise<MaterializeStats> {
  const { image, indexes } = prepared;
  const diffIds = layerDiffIds(image);
  const branches = await LayerBranchWriter.create(target.rootfs, target.staging);
  const applier = new LayerApplier(target.staging, { warn: options.warn });

  const limit = limitConcurrency(options.concurrency ?? 4);
  let stopped = false;
  // Failures here are only hints: the applier reads the same bytes and reports what fails.
  const readAhead = Promise.all(readAheadJobs(indexes, lazy.layers).map((job) => limit(() => (stopped ? Promise.resolve() : job().catch(() => undefined)))));

  let entries = 0;
  let bytes = 0;
  try {
    for (const [k, layer] of image.manifest.layers.entries()) {
      const stats = await applier.applyEntries(indexes[k]!.entries, (entry) =>
        entryData(lazy.layers[k]!, entry, (n) => {
          bytes += n;
          options.onBytes?.(n);
        }),
      );
      entries += stats.entries;
      await branches.commitLayer(k, layer, diffIds[k]!);
    }
  } finally {
    stopped = true;
    await readAhead;
  }
  await branches.finish(image);
  return { entries, bytes };
}
