import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { profileInLayers } from '../../../src/vfs/profile-in-layers.js';
import type { AccessProfile } from '../../../src/vfs/access-profile.js';
import type { TarEntry } from '../../../src/tar/tar-entry.js';

/** A tar member as an index keeps it: only what placing a file's bytes looks at matters here. */
function entry(path: string, fields: Partial<TarEntry> = {}): TarEntry {
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, mtimeNsec: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: {}, headerOffset: 0, dataOffset: 0, ...fields };
}

const profile = (...files: AccessProfile['files']): AccessProfile => ({ version: 1, files });

describe('a profile placed by the layer indexes alone (before the tree is built)', () => {
  it('takes each path from the topmost layer that has it, tagged with its place in the profile', () => {
    const layers = [
      { entries: [entry('./usr/', { type: 'dir' }), entry('./usr/bin/app', { size: 100, dataOffset: 512 }), entry('./etc/conf', { size: 10, dataOffset: 1536 })] },
      { entries: [entry('usr/bin/app', { size: 300, dataOffset: 2048 })] },
    ];
    const found = profileInLayers(layers, profile({ path: '/etc/conf' }, { path: '/usr/bin/app', ranges: [[0, 4096]] }));
    assert.deepEqual(found, [[{ offset: 1536, length: 10, order: 0 }], [{ offset: 2048, length: 300, order: 1 }]], 'app from the upper layer only, clipped to its size');
  });

  it('offsets each recorded range by where the file starts in the layer, and drops ranges past its end', () => {
    const layers = [{ entries: [entry('lib/big.so', { size: 100_000, dataOffset: 10_240 })] }];
    const found = profileInLayers(layers, profile({ path: '/lib/big.so', ranges: [[0, 4096], [90_112, 12_288], [200_000, 4096]] }));
    assert.deepEqual(found, [[{ offset: 10_240, length: 4096, order: 0 }, { offset: 10_240 + 90_112, length: 100_000 - 90_112, order: 0 }]]);
  });

  it('reads a hard link from its target in the same layer', () => {
    const layers = [{ entries: [entry('bin/real', { size: 50, dataOffset: 1024 }), entry('bin/alias', { type: 'hardlink', linkname: './bin/real' })] }];
    assert.deepEqual(profileInLayers(layers, profile({ path: '/bin/alias' })), [[{ offset: 1024, length: 50, order: 0 }]]);
  });

  it('leaves a path an upper layer holds as anything but a file: the lower file is hidden', () => {
    const layers = [
      { entries: [entry('opt/tool', { size: 10, dataOffset: 512 }), entry('opt/data', { size: 10, dataOffset: 1536 })] },
      { entries: [entry('opt/tool', { type: 'symlink', linkname: '/bin/true' }), entry('opt/data/', { type: 'dir' })] },
    ];
    assert.deepEqual(profileInLayers(layers, profile({ path: '/opt/tool' }, { path: '/opt/data' })), [[], []]);
  });

  it('within a layer the last member at a path wins, as when the layer is applied', () => {
    const layers = [{ entries: [entry('a', { size: 10, dataOffset: 512 }), entry('a', { size: 20, dataOffset: 1536 })] }];
    assert.deepEqual(profileInLayers(layers, profile({ path: '/a' })), [[{ offset: 1536, length: 20, order: 0 }]]);
  });

  it('leaves eStargz files (read by their chunks), paths no layer has, and empty files to the replay through the tree', () => {
    const layers = [{ entries: [entry('chunked', { size: 10, dataOffset: 0, chunks: [{ fileOffset: 0, size: 10, memberOffset: 100, innerOffset: 0 }] }), entry('empty', { size: 0, dataOffset: 512 })] }];
    assert.deepEqual(profileInLayers(layers, profile({ path: '/chunked' }, { path: '/missing' }, { path: '/empty' })), [[]]);
  });
});
