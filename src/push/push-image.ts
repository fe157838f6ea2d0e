import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KrgoError } from '../errors.js';
import { digestHex, verifyChunks, type Digest } from '../digest.js';
import { MediaType } from '../image/media-types.js';
import { cachedBlobPath } from '../blob/blob-download.js';
import { commitBlobDirFor, LayerRepo, type LayerBranch } from '../git/layer-state.js';
import { defaultRootfs } from '../materialize/rootfs-target.js';
import { clientFor, type ImageSource } from '../registry/image-source.js';
import type { RegistryClient } from '../registry/client.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { blobExists, pushBlob, putManifest, sendBlob, startUpload } from '../registry/upload.js';
import { limitConcurrency } from '../util/concurrency.js';

/** How a blob reached the target. */
export type BlobOutcome = 'present' | 'mounted' | 'uploaded' | 'copied';

export interface PushEvents {
  layerStart?(index: number, digest: Digest, size: number): void;
  layerProgress?(index: number, sent: number, size: number): void;
  layerDone?(index: number, outcome: BlobOutcome, from?: string): void;
  warn?(message: string): void;
}

export interface PushOptions extends ImageSource {
  rootfs?: string;
  /** Layers sent at once. */
  concurrency?: number;
  events?: PushEvents;
}

export interface PushResult {
  reference: string;
  manifestDigest: Digest;
  outcomes: BlobOutcome[];
  bytesSent: number;
}

async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
}

/** A local copy of the right size (its digest is checked as it is sent): made by `commit`, or kept by a pull (`--keep-blobs`). */
async function localBlob(path: string, size: number): Promise<string | undefined> {
  return (await stat(path).catch(() => undefined))?.size === size ? path : undefined;
}

/**
 * `krgo push`: the image a layer repository holds (its pulled layers and those `krgo commit`
 * added) to IMAGE. Blobs the target has are skipped (HEAD); pulled layers are mounted from the
 * source repository when it is on the same registry, else streamed from the source registry
 * (verified on the way); then the config and the manifest, in the source's format.
 */
export async function pushImage(options: PushOptions): Promise<PushResult> {
  const target = parseReference(options.image);
  if (target.digest) throw new KrgoError('USAGE', `cannot push to a digest (${formatReference(target)}); give a tag`);
  const layers = await LayerRepo.open(options.rootfs ?? defaultRootfs(target));
  await layers.assertUnchangedBranches();
  const warn = (message: string) => options.events?.warn?.(message);
  const source = parseReference(layers.state.source);
  const client = clientFor(options, warn);
  // The source is read with the credentials found for its own registry (never the target's -u).
  let sourceClient: RegistryClient | undefined;
  const openSource = () => (sourceClient ??= clientFor({ image: layers.state.source, cacheDir: options.cacheDir, ...(options.insecure ? { insecure: true } : {}) }, warn));
  const sameRegistry = source.registry === target.registry;
  let bytesSent = 0;

  const pushLayer = async (layer: LayerBranch): Promise<BlobOutcome> => {
    const { digest, size } = layer.descriptor;
    const i = layer.index;
    options.events?.layerStart?.(i, digest, size);
    if (await blobExists(client, digest)) return 'present';
    const progress = (sent: number) => options.events?.layerProgress?.(i, sent, size);
    const local = await localBlob(layer.origin === 'commit' ? join(commitBlobDirFor(layers.rootfs), digestHex(digest)) : cachedBlobPath(options.cacheDir, digest), size);
    const mountFrom = layer.origin === 'source' && sameRegistry && source.repository !== target.repository ? { digest, repository: source.repository } : undefined;
    const session = await startUpload(client, mountFrom);
    if (session.mounted) return 'mounted';
    if (local) {
      await sendBlob(client, session, digest, size, verifyChunks(fileChunks(local), digest, size, 'local layer'), progress);
      bytesSent += size;
      return 'uploaded';
    }
    if (layer.origin === 'commit') throw new KrgoError('GIT_STATE', `the blob of committed layer ${layer.branch} is missing from ${commitBlobDirFor(layers.rootfs)}`);
    const blob = await openSource().openBlob(digest, 0);
    try {
      await sendBlob(client, session, digest, size, verifyChunks(blob.chunks, digest, size, 'source layer'), progress);
    } finally {
      blob.cancel();
    }
    bytesSent += size;
    return 'copied';
  };

  try {
    const limit = limitConcurrency(options.concurrency ?? 3);
    const outcomes = await Promise.all(
      layers.state.layers.map((layer) =>
        limit(async () => {
          const outcome = await pushLayer(layer);
          options.events?.layerDone?.(layer.index, outcome, outcome === 'mounted' ? source.repository : outcome === 'copied' ? formatReference(source) : undefined);
          return outcome;
        }),
      ),
    );
    await pushBlob(client, layers.config);
    const mediaType = (JSON.parse(layers.manifest.toString('utf8')) as { mediaType?: string }).mediaType ?? MediaType.ociManifest;
    const manifestDigest = await putManifest(client, target.tag ?? 'latest', mediaType, layers.manifest);
    return { reference: formatReference(target), manifestDigest, outcomes, bytesSent };
  } finally {
    await Promise.all([client.close(), sourceClient?.close()]);
  }
}
