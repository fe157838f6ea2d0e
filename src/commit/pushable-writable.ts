import { join } from 'node:path';
import { digestHex } from '../digest.js';
import type { ImageManifest } from '../image/manifest.js';
import type { PushableImage } from '../push/push-image.js';
import type { WritableTarget } from './find-writable.js';
import { commitBlobDir, loadCommits } from './writable-commits.js';

/**
 * The image a writable mount's commits made, as `krgo push` sends it: the base's layers from its
 * registry (mounted across repositories, never downloaded), the committed ones from the state dir.
 */
export async function pushableWritable(target: WritableTarget): Promise<PushableImage> {
  const commits = await loadCommits(target.state);
  const manifest = JSON.parse(commits.manifest.toString('utf8')) as ImageManifest;
  const made = new Set(commits.layers.map((layer) => layer.digest));
  const blobs = commitBlobDir(target.state);
  return {
    source: commits.source,
    config: commits.config,
    manifest: commits.manifest,
    layers: manifest.layers.map((descriptor) => ({ descriptor, madeHere: made.has(descriptor.digest), ...(made.has(descriptor.digest) ? { local: join(blobs, digestHex(descriptor.digest)) } : {}) })),
    describeMissing: (layer) => `the blob of committed layer ${layer.descriptor.digest} is missing from ${blobs}`,
  };
}
