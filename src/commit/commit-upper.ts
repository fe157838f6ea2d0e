import { join } from 'node:path';
import { KrgoError } from '../errors.js';
import { recordTree } from '../changes/tree-record.js';
import { upperChanges, type UpperRecord } from '../changes/upper-changes.js';
import { memberName } from '../changes/layer-diff.js';
import { writeLayer, type WrittenLayer } from '../changes/layer-writer.js';
import { appendLayer } from '../image/append-layer.js';
import { IndexStore } from '../index/index-store.js';
import { OwnerLock } from '../util/owner-lock.js';
import { commitBlobDir, loadCommits, saveCommits } from './writable-commits.js';
import type { WritableTarget } from './find-writable.js';

export interface UpperCommitResult extends WrittenLayer {
  /** The new layer's place in the image (0 is the base's first). */
  position: number;
  /** Layers committed on top of the base so far, this one included. */
  commits: number;
  indexBytes: number;
}

/**
 * `krgo commit` on a writable mount: what the upper directory changed since the last commit
 * (since the mount, for the first) becomes a gzip layer on top of the image, with a new config
 * and manifest and the layer's index in the cache, so `krgo push` sends the new layer only and a
 * mount of the pushed image is lazy at once. The mount is not touched: it shows the same tree.
 */
export async function commitUpper(target: WritableTarget, message: string, warn: (message: string) => void, dryRun?: (members: string[]) => void): Promise<UpperCommitResult | undefined> {
  const lock = await OwnerLock.tryAcquire(join(target.state, 'commit.lock'));
  if (!lock) throw new KrgoError('MOUNT_BUSY', `another krgo commit is running on ${target.mountpoint}`);
  try {
    const commits = await loadCommits(target.state);
    const identities = new Map<string, string>();
    const now: UpperRecord = { tree: await recordTree(target.upper, identities), identities };
    const diff = upperChanges(now, commits.snapshot);
    for (const path of diff.skipped) warn(`left out ${JSON.stringify(path)}: sockets cannot be stored in a layer`);
    if (diff.changes.length === 0) {
      throw new KrgoError('NOTHING_TO_COMMIT', `nothing to commit: ${target.mountpoint} is as ${commits.layers.length ? 'the last commit' : 'it was mounted'} left it`);
    }
    if (dryRun) {
      dryRun(diff.changes.map(memberName));
      return undefined;
    }
    // The layer's index is built from its bytes as they are compressed, and kept where mounts look.
    const layer = await writeLayer(target.upper, diff.changes, commitBlobDir(target.state), { indexed: true });
    const indexBytes = await new IndexStore(target.cacheDir).save(layer.index!);
    const appended = appendLayer(commits.manifest, commits.config, layer, message);
    const layers = [...commits.layers, { digest: layer.digest, diffId: layer.diffId, size: layer.size, message }];
    await saveCommits(target.state, { ...commits, manifest: appended.manifest, config: appended.config, layers, snapshot: now });
    const manifestLayers = (JSON.parse(appended.manifest.toString('utf8')) as { layers: unknown[] }).layers.length;
    const { index: _built, path: _path, ...written } = layer;
    return { ...written, position: manifestLayers - 1, commits: layers.length, indexBytes };
  } finally {
    await lock.release();
  }
}
