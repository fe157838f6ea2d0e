import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { MergedTree, type Inode } from '../../../src/vfs/merged-tree.js';
import { recordsOfMergedTree as recordsOf } from '../../support/merged-tree-records.js';
import { LayerApplier } from '../../../src/materialize/layer-applier.js';
import { edgeCaseLayers, hostileImages } from '../../support/fixtures.js';
import { diffTrees, snapshotTree } from '../../support/tree-snapshot.js';
import { tempDir } from '../../support/temp.js';

async function compareWithDisk(layers: Buffer[]): Promise<{ diffs: string[]; tree: MergedTree; warnings: string[] }> {
  const tmp = await tempDir('vfs');
  try {
    const warnings: string[] = [];
    const root = join(tmp.path, 'root');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(root);
    const applier = new LayerApplier(root, { warn: () => undefined });
    const tree = new MergedTree((w) => warnings.push(w));
    for (const layer of layers) {
      await applier.applyLayer(Readable.from([layer]));
      await tree.addLayer(Readable.from([layer]));
    }
    return { diffs: diffTrees(await snapshotTree(root), recordsOf(tree, layers)), tree, warnings };
  } finally {
    await tmp.remove();
  }
}

describe('merged tree (pure, in memory)', () => {
  it('presents exactly what krgo pull writes for the edge-case layers', async () => {
    const { diffs, tree } = await compareWithDisk(edgeCaseLayers());
    assert.deepEqual(diffs, []);
    const h2 = tree.lookup('/data/h2')!;
    assert.equal(h2.nlink, 2);
    assert.equal(tree.lookup('/data/h3')!.ino, h2.ino, 'hardlinks share an inode number');
    assert.notEqual(tree.lookup('/data/h1')!.ino, h2.ino);
    assert.equal(tree.lookup('/lib/through-symlink'), undefined, 'lookup follows no symlink');
    assert.ok(tree.lookup('/usr/lib/through-symlink'));
  });

  for (const [name, layers] of Object.entries(hostileImages('/var/krgo-no-such-host-dir'))) {
    it(`agrees with the disk applier on hostile layers: ${name}`, async () => {
      const { diffs, warnings } = await compareWithDisk(layers);
      assert.deepEqual(diffs, []);
      if (/dotdot|whiteout-escape|hardlink/.test(name)) assert.ok(warnings.some((w) => w.startsWith('skipped')), warnings.join('\n'));
    });
  }

  it('puts entries where their parent is now: a directory the layer replaced since is not reused, one it came back to is', async () => {
    const { buildTar } = await import('../../../src/tar/tar-writer.js');
    const layer = buildTar([
      { path: 'e', type: 'dir' },
      { path: 'd', type: 'dir' },
      { path: 'd/f1', type: 'file', content: '1' },
      { path: 'd/sub', type: 'dir' },
      { path: 'd/sub/s', type: 'file', content: 's' },
      { path: 'd/f2', type: 'file', content: '2' },
      { path: 'd', type: 'symlink', linkname: 'e' },
      { path: 'd/f3', type: 'file', content: '3' },
    ]);
    const { diffs, tree } = await compareWithDisk([layer]);
    assert.deepEqual(diffs, []);
    assert.equal(tree.lookup('/d')!.type, 'symlink');
    assert.ok(tree.lookup('/e/f3'), 'd/f3 went through the new symlink');
    assert.equal(tree.lookup('/d/f2'), undefined);
    assert.deepEqual(tree.readdir(tree.lookup('/e')!), ['f3']);
  });

  it('plans reads inside a file and nothing past its end', async () => {
    const tree = new MergedTree();
    const { buildTar } = await import('../../../src/tar/tar-writer.js');
    const tar = buildTar([{ path: 'a', type: 'file', content: 'x'.repeat(10) }, { path: 'b', type: 'file', content: '0123456789' }]);
    await tree.addLayer(Readable.from([tar]));
    const b = tree.lookup('/b') as Inode;
    const span = tree.readPlan(b, 3, 100)!;
    assert.equal(tar.subarray(span.offset, span.offset + span.length).toString(), '3456789');
    assert.equal(tree.readPlan(b, 10, 5), undefined);
  });
});
