import { join } from 'node:path';
import { RegistryRangeSource } from '../blob/range-source.js';
import { DiskSpanStore } from '../blob/disk-span-store.js';
import { MergedTree } from '../vfs/merged-tree.js';
import { LayerReader, SpanCache } from '../vfs/layer-reader.js';
import { ImageReader } from '../vfs/image-reader.js';
import { prepareImage, type IndexEvents } from '../mount/prepare-image.js';
import type { ImageSource } from '../registry/image-source.js';
import { parseReference } from '../registry/reference.js';
import { RootfsTarget } from './rootfs-target.js';
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
  const rootfsPath = options.rootfs ?? parseReference(options.image).repository.split('/').pop()!;
  await RootfsTarget.assertFree(rootfsPath);
  const { client, image, indexes } = await prepareImage(options, options.events);
  try {
    const tree = new MergedTree(warn);
    for (const index of indexes) await tree.addLayerEntries(index.entries);
    const source = new RegistryRangeSource(client);
    const cache = new SpanCache(256 * 1024 * 1024, new DiskSpanStore(join(options.cacheDir, 'spans')));
    const readers = indexes.map((index) => new LayerReader(index, source, cache, (err) => warn(`prefetch failed: ${(err as Error).message}`)));
    const target = await RootfsTarget.prepare(rootfsPath);
    let written = 0;
    const stats = await materializeTree(tree, target.staging, new ImageReader(tree, readers), {
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
