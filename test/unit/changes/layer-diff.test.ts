import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { diffTrees, memberName } from '../../../src/changes/layer-diff.js';
import type { PathRecord, TreeRecord } from '../../../src/changes/tree-record.js';

const dir = (extra: Partial<PathRecord> = {}): PathRecord => ({ type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '1', ...extra });
const file = (extra: Partial<PathRecord> = {}): PathRecord => ({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1', size: 1, nlink: 1, ...extra });
const tree = (entries: Record<string, PathRecord>): TreeRecord => new Map(Object.entries(entries));

const BASE = {
  '/': dir(),
  '/etc': dir(),
  '/etc/a': file(),
  '/etc/b': file(),
  '/opt': dir(),
  '/opt/x': file(),
  '/opt/y': dir(),
  '/opt/y/z': file(),
  '/var': dir(),
  '/var/sub': dir(),
  '/var/sub/deep': file(),
};

function names(before: TreeRecord, after: TreeRecord, content: string[] = []): string[] {
  return diffTrees(before, after, new Set(content)).changes.map(memberName);
}

describe('layer diff: the changes between two recorded trees as layer members', () => {
  it('an unchanged tree gives an empty layer', () => {
    assert.deepEqual(names(tree(BASE), tree(BASE)), []);
  });

  it('content changes come from git even when every recorded field is equal', () => {
    assert.deepEqual(names(tree(BASE), tree(BASE), ['/etc/a']), ['etc/a']);
  });

  it('metadata-only changes (mode, owner, mtime, xattrs) are entries', () => {
    const after = tree({ ...BASE, '/etc/a': file({ mode: 0o600 }), '/etc/b': file({ xattrs: { 'user.k': 'dg==' } }), '/var': dir({ uid: 7 }) });
    assert.deepEqual(names(tree(BASE), after), ['etc/a', 'etc/b', 'var/']);
  });

  it('a removed file is a whiteout; below a removed directory nothing more is said', () => {
    const { '/etc/b': _b, '/var/sub': _s, '/var/sub/deep': _d, ...rest } = BASE;
    assert.deepEqual(names(tree(BASE), tree(rest)), ['etc/.wh.b', 'var/.wh.sub']);
  });

  it('a directory that lost everything it had gets one opaque marker, before its new children', () => {
    const { '/opt/x': _x, '/opt/y': _y, '/opt/y/z': _z, ...rest } = BASE;
    const after = tree({ ...rest, '/opt': dir({ mtime: '2' }), '/opt/new': file() });
    assert.deepEqual(names(tree(BASE), after), ['opt/', 'opt/.wh..wh..opq', 'opt/new']);
  });

  it('a type change replaces the path: no whiteouts for the children of a directory turned file', () => {
    const { '/var/sub/deep': _d, ...rest } = BASE;
    const after = tree({ ...rest, '/var/sub': file() });
    assert.deepEqual(names(tree(BASE), after), ['var/sub']);
  });

  it('new empty directories, symlinks and devices are entries; sockets are left out and reported', () => {
    const after = tree({ ...BASE, '/srv': dir({ mode: 0o700 }), '/l': { type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: '1', link: 'etc/a' }, '/null': { type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: '1', rdev: [1, 3] }, '/sock': { type: 'socket', mode: 0o755, uid: 0, gid: 0, mtime: '1' } });
    const diff = diffTrees(tree(BASE), after, new Set());
    assert.deepEqual(diff.changes.map(memberName), ['l', 'null', 'srv/']);
    assert.deepEqual(diff.skipped, ['/sock']);
  });

  it('a new hardlink: every name of the inode changes (nlink), the later ones link to the first', () => {
    const after = tree({ ...BASE, '/etc/a': file({ nlink: 2 }), '/etc/c': file({ nlink: 2, linkedTo: '/etc/a' }) });
    const diff = diffTrees(tree(BASE), after, new Set());
    assert.deepEqual(diff.changes.map(memberName), ['etc/a', 'etc/c']);
    const c = diff.changes[1]!;
    assert.equal(c.kind === 'entry' && c.record.linkedTo, '/etc/a');
  });

  it('the root directory is the ./ member, first', () => {
    const after = tree({ ...BASE, '/': dir({ mtime: '9' }), '/new': file() });
    assert.deepEqual(names(tree(BASE), after), ['./', 'new']);
  });
});
