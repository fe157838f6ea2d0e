import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { elfDependencies } from '../../../src/vfs/elf-deps.js';
import { LibraryPrefetcher } from '../../../src/vfs/library-prefetch.js';
import { resolvePath } from '../../../src/vfs/resolve-path.js';
import type { ImageReader } from '../../../src/vfs/image-reader.js';
import { MergedTree, type Inode } from '../../../src/vfs/merged-tree.js';
import { buildTar } from '../../../src/tar/tar-writer.js';

const readerOf = (file: Buffer) => async (offset: number, length: number) => file.subarray(offset, offset + length);

describe('library prefetch: ELF dependencies and symlink resolution', () => {
  it("reads a real dynamic executable's interpreter and DT_NEEDED libraries (this machine's /usr/bin/ls)", async () => {
    const ls = readFileSync('/usr/bin/ls');
    const deps = await elfDependencies(readerOf(ls), ls.length);
    assert.equal(deps?.interpreter, '/lib64/ld-linux-x86-64.so.2');
    assert.ok(deps?.needed.includes('libc.so.6'), JSON.stringify(deps));
    assert.ok(deps?.names.has('setlocale') && deps.names.has('libc.so.6'), 'the dynamic string table: libraries and imported symbols');
  });

  it('a static binary has no libraries; non-ELF and truncated files give nothing', async () => {
    const busybox = readFileSync('/bin/busybox');
    assert.deepEqual(await elfDependencies(readerOf(busybox), busybox.length), { needed: [], names: new Set() });
    const text = Buffer.from('#!/bin/sh\necho hi\n'.repeat(10));
    assert.equal(await elfDependencies(readerOf(text), text.length), undefined);
    const ls = readFileSync('/usr/bin/ls').subarray(0, 100);
    assert.equal(await elfDependencies(readerOf(ls), ls.length), undefined);
  });

  it('resolves paths through relative and absolute symlinks, never out of the tree', async () => {
    const tree = new MergedTree();
    await tree.addLayer(Readable.from([
      buildTar([
        { path: 'usr/', type: 'dir' },
        { path: 'usr/lib/', type: 'dir' },
        { path: 'usr/lib/x86_64-linux-gnu/', type: 'dir' },
        { path: 'usr/lib/x86_64-linux-gnu/libc.so.6', type: 'file', content: 'libc' },
        { path: 'usr/lib/x86_64-linux-gnu/libz.so.1', type: 'symlink', linkname: 'libz.so.1.2.13' },
        { path: 'usr/lib/x86_64-linux-gnu/libz.so.1.2.13', type: 'file', content: 'zlib' },
        { path: 'lib', type: 'symlink', linkname: 'usr/lib' },
        { path: 'lib64', type: 'symlink', linkname: '/usr/lib/../../../usr/lib' },
        { path: 'escape', type: 'symlink', linkname: '../../../etc/passwd' },
      ]),
    ]));
    assert.equal(resolvePath(tree, '/lib/x86_64-linux-gnu/libc.so.6')?.size, 4);
    assert.equal(resolvePath(tree, '/lib/x86_64-linux-gnu/libz.so.1')?.size, 4);
    assert.equal(resolvePath(tree, '/lib64/x86_64-linux-gnu/libz.so.1')?.size, 4);
    assert.equal(resolvePath(tree, '/escape'), undefined);
    assert.equal(resolvePath(tree, '/lib/nothing'), undefined);
  });

  it('with the libraries of a dynamic program, the files glibc opens for it: loader cache, C.UTF-8 locale, time zone', async () => {
    const ls = readFileSync('/usr/bin/ls'); // dynamic; imports setlocale and localtime
    const busybox = readFileSync('/bin/busybox'); // static: no loader, no runtime files
    const tree = new MergedTree();
    await tree.addLayer(Readable.from([
      buildTar([
        { path: 'bin/', type: 'dir' },
        { path: 'bin/ls', type: 'file', mode: 0o755, content: ls },
        { path: 'bin/busybox', type: 'file', mode: 0o755, content: busybox },
        { path: 'etc/', type: 'dir' },
        { path: 'etc/ld.so.cache', type: 'file', content: 'cache' },
        { path: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/Etc/UTC' },
        { path: 'usr/', type: 'dir' },
        { path: 'usr/share/', type: 'dir' },
        { path: 'usr/share/zoneinfo/', type: 'dir' },
        { path: 'usr/share/zoneinfo/Etc/', type: 'dir' },
        { path: 'usr/share/zoneinfo/Etc/UTC', type: 'file', content: 'TZif2' },
        { path: 'usr/lib/', type: 'dir' },
        { path: 'usr/lib/locale/', type: 'dir' },
        { path: 'usr/lib/locale/C.utf8/', type: 'dir' },
        { path: 'usr/lib/locale/C.utf8/LC_CTYPE', type: 'file', content: 'ctype-data' },
      ]),
    ]));
    const run = async (path: string): Promise<string[]> => {
      const names = new Map([...tree.walk()].map(([p, inode]) => [inode, p]));
      const prefetched: string[] = [];
      const program = tree.lookup(path)!;
      const bytes = path === '/bin/ls' ? ls : busybox;
      const reader = {
        prefetch: (inode: Inode) => prefetched.push(names.get(inode)!),
        read: async (_inode: Inode, offset: number, length: number) => bytes.subarray(offset, offset + length),
      } as unknown as ImageReader;
      new LibraryPrefetcher(tree, reader).opened(program);
      await new Promise((resolve) => setTimeout(resolve, 50));
      return prefetched.sort();
    };
    assert.deepEqual(await run('/bin/ls'), ['/etc/ld.so.cache', '/usr/lib/locale/C.utf8/LC_CTYPE', '/usr/share/zoneinfo/Etc/UTC']);
    assert.deepEqual(await run('/bin/busybox'), []);
  });

  it("prefetches the image's command (looked up in its PATH) and, for an ELF, its libraries", async () => {
    const ls = readFileSync('/usr/bin/ls');
    const tree = new MergedTree();
    await tree.addLayer(Readable.from([
      buildTar([
        { path: 'opt/', type: 'dir' },
        { path: 'opt/bin/', type: 'dir' },
        { path: 'opt/bin/tool', type: 'file', mode: 0o755, content: ls },
        { path: 'lib/', type: 'dir' },
        { path: 'lib/x86_64-linux-gnu/', type: 'dir' },
        { path: 'lib/x86_64-linux-gnu/libc.so.6', type: 'file', content: 'libc' },
        { path: 'lib64/', type: 'dir' },
        { path: 'lib64/ld-linux-x86-64.so.2', type: 'file', content: 'ld.so' },
      ]),
    ]));
    const prefetched: number[] = [];
    const reader = {
      prefetch: (inode: Inode) => prefetched.push(inode.size),
      read: async (_inode: Inode, offset: number, length: number) => ls.subarray(offset, offset + length),
    } as unknown as ImageReader;
    new LibraryPrefetcher(tree, reader).command({ Cmd: ['tool', '-l'], Env: ['PATH=/usr/bin:/opt/bin'] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(prefetched.sort((a, b) => a - b), [4, 5, ls.length]);
  });
});
