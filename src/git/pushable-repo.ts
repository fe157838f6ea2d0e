import { join } from 'node:path';
import { digestHex } from '../digest.js';
import { cachedBlobPath } from '../blob/blob-download.js';
import type { PushableImage } from '../push/push-image.js';
import { commitBlobDirFor, LayerRepo } from './layer-state.js';

/**
 * The image a layer repository holds (a rootfs pulled with -g: its pulled layers and those
 * `krgo commit` added), as `krgo push` sends it. Refused when a layer branch was changed with git.
 */
export async function pushableRepo(rootfs: string, cacheDir: string): Promise<PushableImage> {
  const repo = await LayerRepo.open(rootfs);
  await repo.assertUnchangedBranches();
  const blobDir = commitBlobDirFor(repo.rootfs);
  const branchOf = new Map(repo.state.layers.map((layer) => [layer.descriptor.digest, layer.branch]));
  return {
    source: repo.state.source,
    config: repo.config,
    manifest: repo.manifest,
    layers: repo.state.layers.map((layer) => {
      const madeHere = layer.origin === 'commit';
      const { digest } = layer.descriptor;
      // Pulled layers may be kept in the cache (--keep-blobs); committed ones are in the repository's blob dir.
      return { descriptor: layer.descriptor, madeHere, local: madeHere ? join(blobDir, digestHex(digest)) : cachedBlobPath(cacheDir, digest) };
    }),
    describeMissing: (layer) => `the blob of committed layer ${branchOf.get(layer.descriptor.digest) ?? layer.descriptor.digest} is missing from ${blobDir}`,
  };
}
