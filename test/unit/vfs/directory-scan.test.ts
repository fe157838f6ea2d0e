import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { DirectoryScans, MAX_AHEAD_BYTES } from '../../../src/vfs/directory-scan.js';
import { MergedTree } from '../../../src/vfs/merged-tree.js';
import { MAX_VISITED, TreeOrder } from '../../../src/vfs/tree-order.js';
import type { PlannedRead } from '../../../src/vfs/access-profile.js';
import { buildTar } from '../../../src/tar/tar-writer.js';

const KB = 1024;

/**
 * /bin with `count` files f00, f01, … of `size` bytes, written to the layer in a shuffled order
 * (the listing is sorted, the layer's order is not), a symlink `aa` to the last file, a
 * subdirectory and an empty file among them; /lib with a few files.
 */
async function treeWith(count: number, size: number): Promise<MergedTree> {
  const names = Array.from({ length: count }, (_, i) => `f${String(i).padStart(2, '0')}`);
  const shuffled = names.map((n, i) => ({ n, k: (i * 7919) % count })).sort((a, b) => a.k - b.k).map((x) => x.n);
  const tree = new MergedTree();
  await tree.addLayer(Readable.from([
    buildTar([
      { path: 'bin/', type: 'dir' },
      ...shuffled.map((n) => ({ path: `bin/${n}`, type: 'file' as const, content: Buffer.alloc(size, n) })),
      { path: 'bin/aa', type: 'symlink', linkname: names[count - 1]! },
      { path: 'bin/f05.d/', type: 'dir' },
      { path: 'bin/f07-empty', type: 'file', content: '' },
      { path: 'lib/', type: 'dir' },
      ...['a', 'b', 'c', 'd', 'e'].map((n) => ({ path: `lib/${n}`, type: 'file' as const, content: Buffer.alloc(size, n) })),
    ]),
  ]));
  return tree;
}

/** A scanner over `tree` that records what it fetches ahead. */
function scannerOf(tree: MergedTree): { scans: DirectoryScans; fetched: string[][]; bytes: number[][]; read: (path: string) => boolean } {
  const fetched: string[][] = [];
  const bytes: number[][] = [];
  const pathOf = new Map<number, string>();
  for (const [path, inode] of tree.walk()) pathOf.set(inode.ino, path);
  const scans = new DirectoryScans(tree, (reads: PlannedRead[]) => {
    fetched.push(reads.map((r) => pathOf.get(r.inode.ino)!));
    bytes.push(reads.map((r) => r.offset + r.length));
  });
  return { scans, fetched, bytes, read: (path) => scans.firstRead(tree.lookup(path)!, path) };
}

describe("scans: files read one after another in the tree's order are fetched ahead", () => {
  it('after three files in listing order, the next ones are fetched, within a window that grows and is topped up in stretches', async () => {
    const tree = await treeWith(40, 100 * KB);
    const { fetched, read } = scannerOf(tree);
    assert.equal(read('/bin/f00'), false);
    assert.equal(read('/bin/f01'), false);
    assert.deepEqual(fetched, [], 'two files in order may be chance: nothing fetched');
    assert.equal(read('/bin/f02'), true, 'the third confirms a scan');
    // 512 KiB ahead: five files of 100 KiB.
    assert.deepEqual(fetched, [['/bin/f03', '/bin/f04', '/bin/f05', '/bin/f06', '/bin/f07']], 'the next files, past a directory and an empty file');
    for (let i = 3; i < 40; i++) assert.equal(read(`/bin/f${String(i).padStart(2, '0')}`), true);
    const all = fetched.flat();
    assert.equal(new Set(all).size, all.length, 'no file asked for twice');
    assert.deepEqual(all, Array.from({ length: 37 }, (_, k) => `/bin/f${String(k + 3).padStart(2, '0')}`), 'every later file, in order; nothing past the directory the scan is in');
    // A walk that goes on into the next directory takes the scan with it (as `find` or `tar` go).
    assert.equal(read('/lib/a'), true);
    assert.deepEqual(fetched.flat().slice(all.length), ['/lib/b', '/lib/c', '/lib/d', '/lib/e']);
    assert.ok(fetched.length < 10, `a few stretches, not one fetch per file (${fetched.length})`);
  });

  it('never more than the budget ahead of the reader, a file larger than it fetched ahead in part', async () => {
    const ahead = async (count: number, size: number) => {
      const tree = await treeWith(count, size);
      const { fetched, bytes, read } = scannerOf(tree);
      const asked = new Map<number, number>();
      let most = 0;
      for (let i = 0; i < count - 1; i++) {
        read(`/bin/f${String(i).padStart(2, '0')}`);
        fetched.forEach((paths, k) => paths.forEach((p, j) => asked.set(Number(p.slice(6, 8)), bytes[k]![j]!)));
        most = Math.max(most, [...asked].filter(([f]) => f > i).reduce((n, [, b]) => n + b, 0));
      }
      return most;
    };
    const small = await ahead(40, 1024 * KB);
    assert.ok(small <= MAX_AHEAD_BYTES && small >= MAX_AHEAD_BYTES / 2, `1 MiB files: ${small} bytes ahead at most, the budget being ${MAX_AHEAD_BYTES}`);
    const large = await ahead(5, MAX_AHEAD_BYTES + 1024 * KB);
    assert.ok(large > 0 && large <= MAX_AHEAD_BYTES, `files larger than the budget: ${large} bytes ahead at most`);
  });

  it('files read out of order (a program loading what it needs) fetch nothing ahead', async () => {
    const tree = await treeWith(40, 100 * KB);
    const { fetched, read } = scannerOf(tree);
    for (const i of [12, 3, 30, 4, 18, 0, 25, 9, 33, 1]) assert.equal(read(`/bin/f${String(i).padStart(2, '0')}`), false);
    assert.deepEqual(fetched, []);
    // Gaps break a run too: an unread file between two read ones is not a scan's step.
    for (const i of [20, 22, 24, 26]) read(`/bin/f${i}`);
    assert.deepEqual(fetched, []);
  });

  it("a symlink's target read where the link sorts does not end the scan; more strays in a row do", async () => {
    const tree = await treeWith(40, 50 * KB);
    const { fetched, read } = scannerOf(tree);
    for (const i of [0, 1, 2]) read(`/bin/f0${i}`);
    const before = fetched.flat().length;
    assert.equal(read('/bin/f39'), true, '`aa` (a link to f39) read first, as a glob lists it: still the scan');
    for (let i = 3; i < 12; i++) assert.equal(read(`/bin/f${String(i).padStart(2, '0')}`), true, `f${i} continues the scan`);
    assert.ok(fetched.flat().length > before, 'and it went on fetching ahead');
    const other = scannerOf(tree);
    for (const i of [0, 1, 2]) other.read(`/bin/f0${i}`);
    for (const i of [30, 20, 10]) other.read(`/bin/f${i}`);
    assert.equal(other.read('/bin/f03'), false, 'three reads out of order: the scan is over, counting starts again');
  });

  it('directories are followed apart: reads in one do not count for another', async () => {
    const tree = await treeWith(10, 10 * KB);
    const { fetched, read } = scannerOf(tree);
    read('/bin/f00');
    read('/lib/a');
    read('/bin/f01');
    read('/lib/b');
    assert.deepEqual(fetched, []);
    assert.equal(read('/lib/c'), true);
    assert.deepEqual(fetched, [['/lib/d', '/lib/e']]);
    assert.equal(read('/bin/f02'), true);
  });

  it('a depth-first walk (find, tar, grep -r) goes from directory to directory, into subdirectories as they sort', async () => {
    const tree = new MergedTree();
    const file = (path: string) => ({ path, type: 'file' as const, content: Buffer.alloc(10 * KB, path) });
    await tree.addLayer(Readable.from([
      buildTar([
        { path: 'w/', type: 'dir' }, { path: 'w/a/', type: 'dir' }, { path: 'w/b/', type: 'dir' }, { path: 'w/b/m/', type: 'dir' }, { path: 'w/c/', type: 'dir' },
        file('w/c/1'), file('w/a/1'), file('w/b/2'), file('w/b/m/1'), file('w/b/1'), file('w/a/2'), file('w/c/2'), file('w/b/z'),
        { path: 'w/b/link', type: 'symlink', linkname: '../c/1' },
      ]),
    ]));
    const order = new TreeOrder(tree);
    assert.deepEqual([...order.walkAfter('/w/a/2')].map((f) => f.path), ['/w/b/1', '/w/b/2', '/w/b/m/1', '/w/b/z', '/w/c/1', '/w/c/2'], 'depth first, sorted, symlinks not followed');
    assert.deepEqual([...order.siblingsAfter('/w/b/1')].map((f) => f.path), ['/w/b/2', '/w/b/z'], "a directory's own files");
    const { fetched, read } = scannerOf(tree);
    // Small directories: a directory's own scan never gets to three files; the walk does.
    for (const path of ['/w/a/1', '/w/a/2']) assert.equal(read(path), false);
    assert.equal(read('/w/b/1'), true);
    assert.deepEqual(fetched, [['/w/b/2', '/w/b/m/1', '/w/b/z', '/w/c/1', '/w/c/2']]);
  });

  it('a look along an order passes a bounded number of entries (a crafted directory of thousands of symlinks)', async () => {
    const tree = new MergedTree();
    const links = Array.from({ length: MAX_VISITED + 100 }, (_, i) => ({ path: `d/b${String(i).padStart(5, '0')}`, type: 'symlink' as const, linkname: 'a' }));
    await tree.addLayer(Readable.from([buildTar([{ path: 'd/', type: 'dir' }, { path: 'd/a', type: 'file', content: 'a' }, ...links, { path: 'd/z', type: 'file', content: 'z' }])]));
    const order = new TreeOrder(tree);
    assert.deepEqual([...order.siblingsAfter('/d/a')], [], 'the file past the links is beyond the bound');
    assert.deepEqual([...order.walkAfter('/d/a')], []);
    assert.deepEqual([...order.siblingsAfter(`/d/b${String(MAX_VISITED).padStart(5, '0')}`)].map((f) => f.path), ['/d/z'], 'from nearer, it is found');
  });
});
