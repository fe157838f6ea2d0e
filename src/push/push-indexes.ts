import type { Digest } from '../digest.js';
import type { Descriptor } from '../image/manifest.js';
import type { RegistryClient } from '../registry/client.js';
import { IndexStore, indexFilesOf, type IndexFiles } from '../index/index-store.js';
import { encodeIndex } from '../index/index-codec.js';
import { publishIndexArtifact, uploadIndexBlobs, type ArtifactSubject, type UploadedIndexBlobs } from '../index/index-artifact.js';
import type { PushLayer } from './push-image.js';
import { fileChunks, fileOfSize } from '../util/file-chunks.js';

/** The index artifact pushed with an image, or why it was not. */
export type IndexPushOutcome = { pushed: true; digest: Digest; built: number } | { pushed: false; reason: string };

/** Index blobs uploaded for an image not yet published, or why there are none. */
export type PreparedIndexes = { ok: true; blobs: UploadedIndexBlobs; built: number } | { ok: false; reason: string };

/**
 * The layer indexes of an image being pushed, uploaded while its layers are (they need no
 * manifest): each index comes from the cache (a mount, a pull or a commit made it), else from a
 * local copy of the layer (one pass); a layer with neither is not fetched for this: the artifact
 * is left out and the outcome says why (`krgo index --push` makes it later). Windows of indexes
 * read from a registry are placed by `placeWindows` (mounted from the source repository), never
 * downloaded here. A failure here never fails the push of the image itself.
 */
export async function uploadIndexes(
  client: RegistryClient,
  layers: readonly PushLayer[],
  cacheDir: string,
  options: { placeWindows: (descriptor: Descriptor) => Promise<void>; warn: (message: string) => void },
): Promise<PreparedIndexes> {
  try {
    const store = new IndexStore(cacheDir);
    const distinct = [...new Map(layers.map((layer) => [layer.descriptor.digest, layer])).values()];
    let built = 0;
    const found = await Promise.all(
      distinct.map(async (layer): Promise<IndexFiles | undefined> => {
        const { digest, size } = layer.descriptor;
        // As stored, not decoded (a base layer's index is megabytes of entries a push never reads).
        const stored = (await store.files(digest, size)) ?? (await store.load(digest, size, (why) => options.warn(`${why}; rebuilding it`)).then((loaded) => loaded && indexFilesOf(loaded.index, loaded.encoded)));
        if (stored) return stored;
        const local = await fileOfSize(layer.local, size);
        if (!local) return undefined;
        const { buildLayerIndex, PUSHED_SEEK_DENSITY } = await import('../index/layer-index.js');
        const index = await buildLayerIndex(fileChunks(local), digest, size, PUSHED_SEEK_DENSITY);
        // Encoded once: the same bytes are kept and pushed.
        const encoded = encodeIndex(index);
        await store.save(index, encoded);
        built++;
        return indexFilesOf(index, encoded);
      }),
    );
    const missing = distinct.find((_, i) => !found[i]);
    if (missing) return { ok: false, reason: `no index of layer ${missing.descriptor.digest} here (\`krgo index --push\` makes one)` };
    const indexes = found as IndexFiles[];
    return { ok: true, blobs: await uploadIndexBlobs(client, indexes, options.placeWindows ? { placeWindows: options.placeWindows } : {}), built };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** Once the image manifest is in: the artifact that refers to it. */
export async function publishIndexes(client: RegistryClient, image: ArtifactSubject, prepared: PreparedIndexes): Promise<IndexPushOutcome> {
  if (!prepared.ok) return { pushed: false, reason: prepared.reason };
  try {
    return { pushed: true, digest: await publishIndexArtifact(client, image, prepared.blobs), built: prepared.built };
  } catch (err) {
    return { pushed: false, reason: (err as Error).message };
  }
}
