import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { memberName } from '../../../src/changes/layer-diff.js';
import { upperChanges, type UpperRecord } from '../../../src/changes/upper-changes.js';
import type { PathRecord } from '../../../src/changes/tree-record.js';

const OPAQUE = { 'trusted.overlay.opaque': Buffer.from('y').toString('base64') };
const dir = (extra: Partial<PathRecord> = {}): PathRecord => ({ type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '1', ...extra });
const file = (extra: Partial<PathRecord> = {}): PathRecord => ({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1', size: 1, nlink: 1, ...extra });
const whiteout = (): PathRecord => ({ type: 'char', mode: 0, uid: 0, gid: 0, mtime: '1', rdev: [0, 0] });

/** An upper record; identities default to one per path, `ids` overrides (a rewrite changes one). */
function upper(entries: Record<string, PathRecord>, ids: Record<string, string> = {}): UpperRecord {
  const tree = new Map(Object.entries({ '/': dir(), ...entries }));
  return { tree, identities: new Map([...tree.keys()].map((p) => [p, ids[p] ?? `id:${p}`])) };
}

const names = (now: UpperRecord, before?: UpperRecord) => upperChanges(now, before).changes.map(memberName);

describe('upper changes: an overlayfs upper directory as layer members', () => {
  it('first commit: every upper path, whiteouts as .wh., opaque directories with their marker, overlay xattrs dropped, the root left out', () => {
    const now = upper({
      '/etc': dir({ xattrs: { 'trusted.overlay.impure': 'eQ==' } }),
      '/etc/debian_version': whiteout(),
      '/etc/passwd': file({ size: 900 }),
      '/opt': dir({ xattrs: OPAQUE }),
      '/opt/new': file(),
    });
    assert.deepEqual(names(now), ['etc/', 'etc/.wh.debian_version', 'etc/passwd', 'opt/', 'opt/.wh..wh..opq', 'opt/new']);
    const etc = upperChanges(now).changes.find((c) => c.path === '/etc');
    assert.ok(etc?.kind === 'entry' && etc.record.xattrs === undefined, 'trusted.overlay.* is overlay bookkeeping, not image content');
    const opt = upperChanges(now).changes.find((c) => c.kind === 'entry' && c.path === '/opt');
    assert.ok(opt?.kind === 'entry' && opt.record.xattrs === undefined);
  });

  it('user xattrs stay; sockets are skipped and reported', () => {
    const diff = upperChanges(upper({ '/f': file({ xattrs: { 'user.k': 'dg==', 'trusted.overlay.origin': 'AA==' } }), '/s': { ...file(), type: 'socket' } }));
    assert.deepEqual(diff.skipped, ['/s']);
    assert.deepEqual(diff.changes.map((c) => (c.kind === 'entry' ? c.record.xattrs : undefined)), [{ 'user.k': 'dg==' }]);
  });

  it('a second commit carries only what changed since the first: content by identity, metadata by record', () => {
    const first = upper({ '/a': file(), '/b': file(), '/c': file(), '/d': dir() });
    assert.deepEqual(names(first, first), []);
    const second = upper({ '/a': file(), '/b': file(), '/c': file({ mode: 0o600 }), '/d': dir() }, { '/b': 'rewritten' });
    assert.deepEqual(names(second, first), ['b', 'c']);
    // A whiteout found again with another inode or time (a remount) is the same deletion.
    const deleted = upper({ '/gone': whiteout() });
    assert.deepEqual(names(upper({ '/gone': { ...whiteout(), mtime: '9' } }, { '/gone': 'other' }), deleted), []);
  });

  it('a path the upper held at the last commit and holds no more is whited out; below a replaced directory nothing is', () => {
    const first = upper({ '/new': file(), '/tree': dir(), '/tree/x': file(), '/tree/y': file() });
    const second = upper({ '/tree': file() });
    assert.deepEqual(names(second, first), ['.wh.new', 'tree']);
  });

  it('a directory that became opaque restates all it holds, and whiteouts below it are dropped', () => {
    const first = upper({ '/opt': dir(), '/opt/kept': file() });
    const second = upper({ '/opt': dir({ xattrs: OPAQUE }), '/opt/kept': file(), '/opt/gone': whiteout() });
    assert.deepEqual(names(second, first), ['opt/', 'opt/.wh..wh..opq', 'opt/kept']);
    // Already opaque and only its mode changed: no marker again, nothing restated.
    const third = upper({ '/opt': dir({ xattrs: OPAQUE, mode: 0o700 }), '/opt/kept': file(), '/opt/gone': whiteout() });
    assert.deepEqual(names(third, second), ['opt/']);
  });

  it('a hardlink group goes in whole when one of its names changed', () => {
    const first = upper({ '/a': file({ nlink: 2 }), '/b': file({ nlink: 2, linkedTo: '/a' }), '/c': file() });
    const second = upper({ '/a': file({ nlink: 2 }), '/b': file({ nlink: 2, linkedTo: '/a' }), '/c': file() }, { '/a': 'rewritten', '/b': 'rewritten' });
    assert.deepEqual(names(second, first), ['a', 'b']);
    const touchedOne = upper({ '/a': file({ nlink: 3 }), '/b': file({ nlink: 3, linkedTo: '/a' }), '/c': file(), '/d': file({ nlink: 3, linkedTo: '/a' }) });
    assert.deepEqual(names(touchedOne, first), ['a', 'b', 'd']);
  });
});
