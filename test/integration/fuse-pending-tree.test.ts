import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { mountTree } from '../../src/fuse/fuse-adapter.js';
import { MergedTree } from '../../src/vfs/merged-tree.js';
import { buildLayerIndex } from '../../src/index/layer-index.js';
import { buildTar } from '../../src/tar/tar-writer.js';
import { sha256Of } from '../../src/digest.js';
import { deferred } from '../../src/util/deferred.js';
import { tempDir } from '../support/temp.js';

/** A kernel mount made before its tree is built (a mount's indexes still in flight): calls wait for the tree. */
describe('a FUSE mount whose tree is still coming', () => {
  async function treeOf(content: Buffer): Promise<MergedTree> {
    const blob = gzipSync(buildTar([{ path: 'hello.txt', type: 'file', content }]));
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length);
    const tree = new MergedTree();
    await tree.addLayerEntries(index.entries);
    return tree;
  }

  it('answers once the tree is there, what was asked before included', async () => {
    const dir = await tempDir('pending-tree');
    const content = Buffer.from('hello from a tree that came late\n');
    const pending = deferred<MergedTree>();
    const fs = await mountTree(dir.path, pending.promise, { fsname: 'krgo:test', log: () => undefined, readFile: async (_inode, offset, length) => content.subarray(offset, offset + length) });
    try {
      let listed = false;
      const listing = readdir(dir.path).then((names) => ((listed = true), names));
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(listed, false, 'the listing waits for the tree');
      pending.resolve(await treeOf(content));
      assert.deepEqual(await listing, ['hello.txt']);
      assert.ok((await readFile(join(dir.path, 'hello.txt'))).equals(content));
      // Counted when first asked (not on the way to ready): the paths below the root, their bytes.
      const totals = await statfs(dir.path);
      assert.equal(totals.files, 1);
      assert.equal(totals.blocks * totals.bsize, 4096);
    } finally {
      await fs.unmount();
      await dir.remove();
    }
  });

  it('answers EIO when the tree never comes', async () => {
    const dir = await tempDir('pending-tree');
    const pending = deferred<MergedTree>();
    const fs = await mountTree(dir.path, pending.promise, { fsname: 'krgo:test', log: () => undefined, readFile: async () => Buffer.alloc(0) });
    try {
      const listing = readdir(dir.path);
      pending.reject(new Error('the registry went away'));
      await assert.rejects(listing, (err: NodeJS.ErrnoException) => err.code === 'EIO');
    } finally {
      await fs.unmount();
      await dir.remove();
    }
  });
});

/** An image never changes: the kernel keeps what it learnt, missing names included. */
describe("a FUSE mount's answers kept by the kernel", () => {
  it('a name the image lacks is asked for once: the kernel keeps the ENOENT (negative_timeout)', async () => {
    const dir = await tempDir('negative-cache');
    const blob = gzipSync(buildTar([{ path: 'present.txt', type: 'file', content: 'here\n' }]));
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length);
    const tree = new MergedTree();
    await tree.addLayerEntries(index.entries);
    const asked = new Map<string, number>();
    const lookup = tree.lookup.bind(tree);
    tree.lookup = (path: string) => {
      asked.set(path, (asked.get(path) ?? 0) + 1);
      return lookup(path);
    };
    const fs = await mountTree(dir.path, tree, { fsname: 'krgo:test', log: () => undefined, readFile: async () => Buffer.from('here\n') });
    try {
      for (let i = 0; i < 3; i++) await assert.rejects(stat(join(dir.path, 'missing.so')), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
      assert.equal(asked.get('/missing.so'), 1, `lookups: ${JSON.stringify([...asked])}`);
      assert.equal(await readFile(join(dir.path, 'present.txt'), 'utf8'), 'here\n');
    } finally {
      await fs.unmount();
      await dir.remove();
    }
  });
});
