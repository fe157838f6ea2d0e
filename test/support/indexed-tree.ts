import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { MergedTree } from '../../src/vfs/merged-tree.js';
import { buildLayerIndex, type LayerIndex } from '../../src/index/layer-index.js';
import { decodeIndex, encodeIndex } from '../../src/index/index-codec.js';
import { sha256Of } from '../../src/digest.js';

/**
 * A one-layer tree from a tar, through its index as a mount gets it (encoded and decoded again,
 * hints included), with the path of each inode.
 */
export async function indexedTree(tar: Buffer): Promise<{ tree: MergedTree; pathOf: Map<number, string>; index: LayerIndex }> {
  const blob = gzipSync(tar);
  const index = decodeIndex(encodeIndex(await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length)));
  const tree = new MergedTree();
  await tree.addLayerEntries(index.entries);
  const pathOf = new Map<number, string>();
  for (const [path, inode] of tree.walk()) pathOf.set(inode.ino, path);
  return { tree, pathOf, index };
}
