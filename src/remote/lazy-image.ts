import { join } from 'node:path';
import { RegistryRangeSource } from '../blob/range-source.js';
import { DiskSpanStore } from '../cache/disk-span-store.js';
import { MergedTree } from '../vfs/merged-tree.js';
import { LayerReader, SpanCache } from '../vfs/layer-reader.js';
import { ImageReader } from '../vfs/image-reader.js';
import type { PreparedImage } from './prepare-image.js';

export interface LazyImage {
  tree: MergedTree;
  reader: ImageReader;
  /** One reader per layer, for work done layer by layer (materialize -g). */
  layers: LayerReader[];
  source: RegistryRangeSource;
  /** Waits for the span cache's disk writes (they follow the reads in the background). */
  flush(): Promise<void>;
}

/**
 * The read side shared by mount and materialize: the layers stacked in memory, and file bytes
 * fetched by range through span caches in memory and on disk (`<cacheDir>/spans`).
 */
export async function openLazyImage(
  prepared: PreparedImage,
  options: { cacheDir: string; memoryCacheBytes?: number; diskCacheBytes?: number; warn: (message: string) => void },
): Promise<LazyImage> {
  const tree = new MergedTree(options.warn);
  for (const index of prepared.indexes) await tree.addLayerEntries(index.entries);
  const source = new RegistryRangeSource(prepared.client);
  const disk = new DiskSpanStore(join(options.cacheDir, 'spans'), options.diskCacheBytes);
  const cache = new SpanCache(options.memoryCacheBytes, disk);
  const background = (err: unknown) => options.warn(`background fetch failed: ${(err as Error).message}`);
  // One reader per distinct blob: a layer named twice shares its spans and fetches.
  const byDigest = new Map<string, LayerReader>();
  const readers = prepared.indexes.map((index) => {
    let reader = byDigest.get(index.layerDigest);
    if (!reader) byDigest.set(index.layerDigest, (reader = new LayerReader(index, source, cache, background)));
    return reader;
  });
  return { tree, reader: new ImageReader(tree, readers), layers: readers, source, flush: () => disk.flush() };
}
