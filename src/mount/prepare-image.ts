import { assertSupportedLayers } from '../image/media-types.js';
import { hostPlatform } from '../image/platform.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { clientFor, type ImageSource } from '../registry/image-source.js';
import { resumableChunks } from '../blob/resumable-chunks.js';
import { buildLayerIndex, type LayerIndex } from '../index/layer-index.js';
import { IndexStore } from '../index/index-store.js';
import { fetchIndexArtifact, type FetchedArtifact } from '../index/index-artifact.js';
import type { AccessProfile } from '../vfs/access-profile.js';
import { readStargzIndex, TOC_DIGEST_ANNOTATION } from '../index/estargz.js';
import { limitConcurrency } from '../util/concurrency.js';
import { join } from 'node:path';
import { RegistryRangeSource } from '../blob/range-source.js';
import { DiskSpanStore } from '../blob/disk-span-store.js';
import { MergedTree } from '../vfs/merged-tree.js';
import { LayerReader, SpanCache } from '../vfs/layer-reader.js';
import { ImageReader } from '../vfs/image-reader.js';

export type IndexSource = 'cache' | 'registry' | 'built';

export interface IndexEvents {
  /** Where the index came from: the cache, the registry (an index artifact), or a full pass. */
  layerIndexed?(layer: number, source: IndexSource, index: LayerIndex, bytes: number): void;
  warn?(message: string): void;
}

export interface PreparedImage {
  client: RegistryClient;
  image: ResolvedImage;
  indexes: LayerIndex[];
  /** The access profile stored with the indexes in the registry, if any. */
  profile?: AccessProfile;
}

/**
 * Resolves an image and gets one index per layer: from the cache when a valid one is there,
 * else by one streaming pass over the layer (resumable, verified), saved for next time.
 */
export async function prepareImage(source: ImageSource, events: IndexEvents = {}): Promise<PreparedImage> {
  const warn = (message: string) => events.warn?.(message);
  const client = clientFor(source, warn);
  try {
    const resolved = await client.resolveManifest(source.platform ?? hostPlatform());
    assertSupportedLayers(resolved.manifest.layers);
    const store = new IndexStore(source.cacheDir);
    const limit = limitConcurrency(3);
    const cached = await Promise.all(resolved.manifest.layers.map((layer) => store.load(layer.digest, layer.size, (why) => warn(`${why}; rebuilding it`))));
    // Before scanning any layer, ask the registry for indexes another machine pushed
    // (alongside the config: one round trip less).
    const none: FetchedArtifact = { indexes: new Map() };
    const [image, artifact] = await Promise.all([
      client.withConfig(resolved),
      cached.some((c) => !c)
        ? fetchIndexArtifact(client, resolved, warn).catch((err: unknown) => {
            warn(`could not look for index artifacts: ${(err as Error).message}`);
            return none;
          })
        : none,
    ]);
    const indexes = await Promise.all(
      image.manifest.layers.map((layer, i) =>
        limit(async () => {
          const inCache = cached[i];
          if (inCache) {
            events.layerIndexed?.(i, 'cache', inCache.index, inCache.bytes);
            return inCache.index;
          }
          const pushed = artifact.indexes.get(layer.digest);
          if (pushed) {
            events.layerIndexed?.(i, 'registry', pushed.index, await store.save(pushed.index, pushed.encoded));
            return pushed.index;
          }
          // eStargz carries its own index: footer and TOC by range, no pass over the layer.
          const index = layer.annotations?.[TOC_DIGEST_ANNOTATION]
            ? await readStargzIndex(layer, (start, end) => client.readRange(layer.digest, start, end - start))
            : await buildLayerIndex(resumableChunks(client, layer.digest, layer.size, 0, { log: warn }), layer.digest, layer.size);
          events.layerIndexed?.(i, 'built', index, await store.save(index));
          return index;
        }),
      ),
    );
    return { client, image, indexes, ...(artifact.profile ? { profile: artifact.profile } : {}) };
  } catch (err) {
    await client.close();
    throw err;
  }
}

export interface LazyImage {
  tree: MergedTree;
  reader: ImageReader;
  /** One reader per layer, for work done layer by layer (materialize -g). */
  layers: LayerReader[];
  source: RegistryRangeSource;
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
  const cache = new SpanCache(options.memoryCacheBytes, new DiskSpanStore(join(options.cacheDir, 'spans'), options.diskCacheBytes));
  const background = (err: unknown) => options.warn(`background fetch failed: ${(err as Error).message}`);
  const readers = prepared.indexes.map((index) => new LayerReader(index, source, cache, background));
  return { tree, reader: new ImageReader(tree, readers), layers: readers, source };
}
