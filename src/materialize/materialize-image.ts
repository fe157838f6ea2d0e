import { openLazyImage, prepareImage, type IndexEvents } from '../mount/prepare-image.js';
import type { ImageSource } from '../registry/image-source.js';
import { parseReference } from '../registry/reference.js';
import { RootfsTarget, defaultRootfs } from './rootfs-target.js';
import { materializeTree, type MaterializeStats } from './materialize-tree.js';

export interface MaterializeOptions extends ImageSource {
  rootfs?: string;
  events?: IndexEvents & { progress?(bytesWritten: number): void };
}

/**
 * The full rootfs from the layer indexes and the span cache (what a mount already fetched is not
 * fetched again), with the same result as `krgo pull`.
 */
export async function materializeImage(options: MaterializeOptions): Promise<MaterializeStats & { rootfs: string; fetched: number }> {
  const warn = (message: string) => options.events?.warn?.(message);
  const rootfsPath = options.rootfs ?? defaultRootfs(parseReference(options.image));
  await RootfsTarget.assertFree(rootfsPath);
  const prepared = await prepareImage(options, options.events);
  const { client, image } = prepared;
  try {
    const { tree, reader, source } = await openLazyImage(prepared, { cacheDir: options.cacheDir, warn });
    const target = await RootfsTarget.prepare(rootfsPath);
    let written = 0;
    const stats = await materializeTree(tree, target.staging, reader, {
      warn,
      onFile: (bytes) => options.events?.progress?.((written += bytes)),
    }).catch(async (err: unknown) => {
      await target.abandon();
      throw err;
    });
    await target.commit(image, 'materialize');
    return { ...stats, rootfs: target.rootfs, fetched: [...source.fetched.values()].reduce((a, b) => a + b, 0) };
  } finally {
    await client.close();
  }
}
