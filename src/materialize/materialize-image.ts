import { prepareImage, type IndexEvents } from '../remote/prepare-image.js';
import { openLazyImage } from '../remote/lazy-image.js';
import type { MergedTree } from '../vfs/merged-tree.js';
import type { ImageSource } from '../registry/image-source.js';
import { RootfsTarget } from './rootfs-target.js';
import { rootfsOf } from '../hostfs/rootfs-paths.js';
import { materializeTree, type MaterializeStats } from './materialize-tree.js';
import { materializeBranches } from './materialize-branches.js';

export interface MaterializeOptions extends ImageSource {
  rootfs?: string;
  /** One git branch per layer, as `pull -g` writes them. */
  git?: boolean;
  events?: IndexEvents & {
    /** The tree is known and writing starts: the regular files' bytes to write (each file once; unknown for -g, which writes every layer). */
    writing?(totalBytes: number | undefined): void;
    progress?(bytesWritten: number, bytesFetched: number): void;
  };
}

/** The bytes of the tree's regular files, each inode once (hardlinks share theirs). */
function fileBytesOf(tree: MergedTree): number {
  const seen = new Set<number>();
  let total = 0;
  for (const [, inode] of tree.walk()) {
    if (inode.type !== 'file' || seen.has(inode.ino)) continue;
    seen.add(inode.ino);
    total += inode.size;
  }
  return total;
}

/**
 * The full rootfs from the layer indexes and the span cache (what a mount already fetched is not
 * fetched again), with the same result as `krgo pull` (or, with `git`, `krgo pull -g`).
 */
export async function materializeImage(options: MaterializeOptions): Promise<MaterializeStats & { rootfs: string; fetched: number }> {
  const warn = (message: string) => options.events?.warn?.(message);
  const rootfsPath = rootfsOf(options.image, options.rootfs);
  await RootfsTarget.assertFree(rootfsPath);
  const prepared = await prepareImage(options, options.events);
  const { client, image } = prepared;
  try {
    const lazy = await openLazyImage(prepared, { cacheDir: options.cacheDir, warn });
    const { tree, reader, source } = lazy;
    const target = await RootfsTarget.prepare(rootfsPath);
    let written = 0;
    const fetched = () => [...source.fetched.values()].reduce((a, b) => a + b, 0);
    const progress = (bytes: number) => options.events?.progress?.((written += bytes), fetched());
    options.events?.writing?.(options.git ? undefined : fileBytesOf(tree));
    const stats = await (options.git
      ? materializeBranches(prepared, lazy, target, { warn, onBytes: progress })
      : materializeTree(tree, target.staging, reader, { warn, onFile: progress })
    ).catch(async (err: unknown) => {
      await target.abandon();
      throw err;
    });
    // What was fetched is on disk before this process ends: a later mount or materialize reuses it.
    await lazy.flush();
    await target.commit(image, 'materialize');
    return { ...stats, rootfs: target.rootfs, fetched: fetched() };
  } finally {
    await client.close();
  }
}
