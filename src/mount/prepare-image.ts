import { assertSupportedLayers, TOC_DIGEST_ANNOTATION } from '../image/media-types.js';
import { hostPlatform } from '../image/platform.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { clientFor, type ImageSource } from '../registry/image-source.js';
import type { LayerIndex } from '../index/index-format.js';
import { IndexStore } from '../index/index-store.js';
import { fetchIndexArtifact, type FetchedArtifact } from '../index/index-artifact.js';
import type { AccessProfile } from '../vfs/access-profile.js';
import { limitConcurrency } from '../util/concurrency.js';

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
 * else by one streaming pass over the layer (resumable, verified), saved for next time. Only
 * what the first requests need is imported up front (the builders when a layer needs one): a
 * mount loads the rest of its modules while these requests are on the wire.
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
            ? await (await import('../index/estargz.js')).readStargzIndex(layer, (start, end) => client.readRange(layer.digest, start, end - start))
            : await (await import('../index/layer-index.js')).buildLayerIndex(
                (await import('../blob/resumable-chunks.js')).resumableChunks(client, layer.digest, layer.size, 0, { log: warn }),
                layer.digest,
                layer.size,
              );
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
