import { KrgoError } from '../errors.js';
import { layerCompression } from '../image/media-types.js';
import { hostPlatform } from '../image/platform.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { clientFor, type ImageSource } from '../registry/image-source.js';
import { resumableChunks } from '../blob/resumable-chunks.js';
import { buildLayerIndex, type LayerIndex } from '../index/layer-index.js';
import { IndexStore } from '../index/index-store.js';
import { limitConcurrency } from '../util/concurrency.js';

export interface IndexEvents {
  /** `source` tells where the index came from: the cache, or a full pass over the layer. */
  layerIndexed?(layer: number, source: 'cache' | 'built', index: LayerIndex): void;
  warn?(message: string): void;
}

export interface PreparedImage {
  client: RegistryClient;
  image: ResolvedImage;
  indexes: LayerIndex[];
}

/**
 * Resolves an image and gets one index per layer: from the cache when a valid one is there,
 * else by one streaming pass over the layer (resumable, verified), saved for next time.
 */
export async function prepareImage(source: ImageSource, events: IndexEvents = {}): Promise<PreparedImage> {
  const warn = (message: string) => events.warn?.(message);
  const client = clientFor(source, warn);
  try {
    const image = await client.resolveImage(source.platform ?? hostPlatform());
    const store = new IndexStore(source.cacheDir);
    const limit = limitConcurrency(3);
    const indexes = await Promise.all(
      image.manifest.layers.map((layer, i) =>
        limit(async () => {
          if (layerCompression(layer.mediaType) === undefined) {
            throw new KrgoError('UNSUPPORTED_MEDIA_TYPE', `layer ${layer.digest} has media type ${layer.mediaType}, which krgo cannot present`);
          }
          const cached = await store.load(layer.digest, layer.size, (why) => warn(`${why}; rebuilding it`));
          if (cached) {
            events.layerIndexed?.(i, 'cache', cached);
            return cached;
          }
          const index = await buildLayerIndex(resumableChunks(client, layer.digest, layer.size, 0, { log: warn }), layer.digest, layer.size);
          await store.save(index);
          events.layerIndexed?.(i, 'built', index);
          return index;
        }),
      ),
    );
    return { client, image, indexes };
  } catch (err) {
    await client.close();
    throw err;
  }
}
