import { KrgoError } from '../errors.js';
import { verifyChunks, type Digest } from '../digest.js';
import { MediaType } from '../image/media-types.js';
import type { Descriptor, ImageManifest } from '../image/manifest.js';
import { clientFor, type ImageSource } from '../registry/image-source.js';
import type { RegistryClient } from '../registry/client.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { blobExists, putManifest, pushBlob, sendBlob, startUpload } from '../registry/upload.js';
import { limitConcurrency } from '../util/concurrency.js';
import { publishIndexes, uploadIndexes, type IndexPushOutcome } from './push-indexes.js';
import { fileChunks, fileOfSize } from '../util/file-chunks.js';

/** How a blob reached the target. */
export type BlobOutcome = 'present' | 'mounted' | 'uploaded' | 'copied';

export interface PushEvents {
  layerStart?(index: number, digest: Digest, size: number): void;
  layerProgress?(index: number, sent: number, size: number): void;
  layerDone?(index: number, outcome: BlobOutcome, from?: string): void;
  warn?(message: string): void;
}

/** One layer of an image to push: from the source image (mounted or copied when not here), or made here. */
export interface PushLayer {
  descriptor: Descriptor;
  /** A copy on this machine (its digest is checked as it is sent), if there may be one. */
  local?: string;
  /** Made here (`krgo commit`): the local copy is the only one. */
  madeHere: boolean;
}

/**
 * What `krgo push` sends: the layers, the config and the manifest (exact bytes), and the image
 * the unchanged layers come from. A `-g` rootfs (git/pushable-repo.ts) and a writable mount
 * (commit/pushable-writable.ts) each describe themselves this way.
 */
export interface PushableImage {
  source: string;
  layers: PushLayer[];
  config: Buffer;
  manifest: Buffer;
  /** Where a layer made here should have been, for the error when it is not. */
  describeMissing(layer: PushLayer): string;
}

export interface PushOptions extends ImageSource {
  /** Layers sent at once. */
  concurrency?: number;
  events?: PushEvents;
}

export interface PushResult {
  reference: string;
  manifestDigest: Digest;
  outcomes: BlobOutcome[];
  bytesSent: number;
  /** The layer index artifact pushed with the image (a mount of it is lazy at once), or why not. */
  indexes: IndexPushOutcome;
}

/**
 * `krgo push`: an image to IMAGE. Blobs the target has are skipped (HEAD); layers of the source
 * image are mounted from the source repository when it is on the same registry, else streamed
 * from the source registry (verified on the way), never stored here; layers made here are
 * uploaded; then the config and the manifest, in the source's format, and the layer indexes as
 * an artifact referring to the pushed manifest.
 */
export async function pushImage(options: PushOptions, pushable: PushableImage): Promise<PushResult> {
  const target = parseReference(options.image);
  if (target.digest) throw new KrgoError('USAGE', `cannot push to a digest (${formatReference(target)}); give a tag`);
  const warn = (message: string) => options.events?.warn?.(message);
  const source = parseReference(pushable.source);
  const client = clientFor(options, warn);
  // The source is read with the credentials found for its own registry (never the target's -u).
  let sourceClient: RegistryClient | undefined;
  const openSource = () => (sourceClient ??= clientFor({ image: pushable.source, cacheDir: options.cacheDir, ...(options.insecure ? { insecure: true } : {}) }, warn));
  const mountableFrom = source.registry === target.registry && source.repository !== target.repository ? source.repository : undefined;
  let bytesSent = 0;

  /** Puts a blob of the source image into the target: HEAD, cross-repository mount, or a verified copy streamed through. */
  const placeSourceBlob = async (descriptor: Descriptor, local: string | undefined, progress?: (sent: number) => void, knownMissing = false): Promise<BlobOutcome> => {
    const { digest, size } = descriptor;
    if (!knownMissing && (await blobExists(client, digest))) return 'present';
    const session = await startUpload(client, mountableFrom ? { digest, repository: mountableFrom } : undefined);
    if (session.mounted) return 'mounted';
    if (local) {
      await sendBlob(client, session, digest, size, verifyChunks(fileChunks(local), digest, size, 'local blob'), progress);
      bytesSent += size;
      return 'uploaded';
    }
    const blob = await openSource().openBlob(digest, 0);
    try {
      await sendBlob(client, session, digest, size, verifyChunks(blob.chunks, digest, size, 'source blob'), progress);
    } finally {
      blob.cancel();
    }
    bytesSent += size;
    return 'copied';
  };

  /** HEAD for every layer at once (cheap); only the transfers wait for one of `limit`'s slots. */
  const pushLayer = async (layer: PushLayer, i: number, limit: <T>(task: () => Promise<T>) => Promise<T>): Promise<BlobOutcome> => {
    const { digest, size } = layer.descriptor;
    options.events?.layerStart?.(i, digest, size);
    if (await blobExists(client, digest)) return 'present';
    const local = await fileOfSize(layer.local, size);
    if (layer.madeHere && !local) throw new KrgoError('GIT_STATE', pushable.describeMissing(layer));
    return limit(() => placeSourceBlob(layer.descriptor, local, (sent) => options.events?.layerProgress?.(i, sent, size), true));
  };

  try {
    // The index blobs go up beside the layers and the config; the artifact once the manifest is in.
    const indexBlobs = uploadIndexes(client, pushable.layers, options.cacheDir, {
      placeWindows: async (descriptor) => {
        await placeSourceBlob(descriptor, undefined);
      },
      warn,
    });
    const limit = limitConcurrency(options.concurrency ?? 3);
    const [outcomes] = await Promise.all([
      Promise.all(
        pushable.layers.map(async (layer, i) => {
          const outcome = await pushLayer(layer, i, limit);
          options.events?.layerDone?.(i, outcome, outcome === 'mounted' ? source.repository : outcome === 'copied' ? formatReference(source) : undefined);
          return outcome;
        }),
      ),
      pushBlob(client, pushable.config),
      indexBlobs,
    ]);
    const manifest = JSON.parse(pushable.manifest.toString('utf8')) as ImageManifest;
    const manifestDigest = await putManifest(client, target.tag ?? 'latest', manifest.mediaType ?? MediaType.ociManifest, pushable.manifest);
    const indexes = await publishIndexes(client, { manifest, manifestDigest, manifestBytes: pushable.manifest, configBytes: pushable.config }, await indexBlobs);
    return { reference: formatReference(target), manifestDigest, outcomes, bytesSent, indexes };
  } finally {
    await Promise.all([client.close(), sourceClient?.close()]);
  }
}
