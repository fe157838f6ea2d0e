import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile, symlink, writeFile, link, utimes } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { parsePaxTime, parseTar } from '../../../src/tar/tar-parser.js';
import { buildTar, encodeEntry } from '../../../src/tar/tar-writer.js';
import type { TarEntry } from '../../../src/tar/tar-entry.js';
import { entryPlace, normalizeEntryPath, normalizedEntryPath, whiteoutOf } from '../../../src/tar/entry-path.js';
import { tempDir } from '../../support/temp.js';
import { runOk } from '../../support/run.js';

/** Feeds the archive in awkward chunk sizes so header and data boundaries fall anywhere. */
function chunked(buf: Buffer, size = 77): AsyncIterable<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

async function collect(archive: Buffer): Promise<{ entry: TarEntry; data: Buffer }[]> {
  const out: { entry: TarEntry; data: Buffer }[] = [];
  await parseTar(chunked(archive), async (entry, data) => {
    const parts: Buffer[] = [];
    for await (const c of data.chunks()) parts.push(Buffer.from(c));
    out.push({ entry, data: Buffer.concat(parts) });
  });
  return out;
}

describe('tar parser', () => {
  for (const format of ['pax', 'gnu', 'ustar'] as const) {
    it(`reads GNU tar's ${format} archives with exact data offsets`, async () => {
      const tmp = await tempDir('tar');
      try {
        const src = join(tmp.path, 'src');
        const longDir = format === 'ustar' ? 'short' : `${'a'.repeat(80)}/${'b'.repeat(80)}`;
        await mkdir(join(src, longDir), { recursive: true });
        await writeFile(join(src, longDir, 'file.txt'), 'x'.repeat(1000));
        await writeFile(join(src, 'small'), 'hello');
        await link(join(src, 'small'), join(src, 'hard'));
        await symlink(format === 'ustar' ? 'small' : `/${'t'.repeat(150)}`, join(src, 'sym'));
        await utimes(join(src, 'small'), 1_600_000_000, 1_600_000_000);
        const archivePath = join(tmp.path, 'a.tar');
        await runOk('tar', [`--format=${format}`, '--numeric-owner', '--sort=name', '-cf', archivePath, '-C', src, '.']);
        const archive = await readFile(archivePath);
        const entries = await collect(archive);
        const byPath = new Map(entries.map((e) => [e.entry.path.replace(/^\.\//, ''), e]));
        const file = byPath.get(`${longDir}/file.txt`);
        assert.ok(file, `long path read in ${format}`);
        assert.equal(file.data.toString(), 'x'.repeat(1000));
        assert.equal(archive.subarray(file.entry.dataOffset, file.entry.dataOffset + 1000).toString(), 'x'.repeat(1000), 'dataOffset points at the bytes');
        // Sorted by name, `hard` carries the data and `small` is the hardlink member.
        const hard = byPath.get('hard')!;
        assert.equal(hard.entry.type, 'file');
        assert.equal(hard.entry.mtime, 1_600_000_000);
        assert.equal(archive.subarray(hard.entry.dataOffset, hard.entry.dataOffset + 5).toString(), 'hello');
        assert.deepEqual([byPath.get('small')!.entry.type, byPath.get('small')!.entry.linkname.replace(/^\.\//, '')], ['hardlink', 'hard']);
        assert.equal(byPath.get('sym')!.entry.type, 'symlink');
        assert.equal(byPath.get('sym')!.entry.linkname, format === 'ustar' ? 'small' : `/${'t'.repeat(150)}`);
      } finally {
        await tmp.remove();
      }
    });
  }

  it('round-trips the writer: PAX xattrs, big ids, fractional mtimes, devices', async () => {
    const archive = buildTar([
      { path: 'x', type: 'file', content: 'abc', xattrs: { 'user.a': Buffer.from([0, 255]) }, uid: 5_000_000, gid: 7, mtime: 12.25, mode: 0o4755 },
      { path: 'dev/c', type: 'char', devmajor: 4, devminor: 64 },
      { path: 'fifo', type: 'fifo' },
    ]);
    const [x, c, f] = await collect(archive);
    assert.deepEqual(x!.entry.xattrs['user.a'], Buffer.from([0, 255]));
    assert.equal(x!.entry.uid, 5_000_000);
    assert.deepEqual([x!.entry.mtime, x!.entry.mtimeNsec], [12, 250_000_000]);
    assert.equal(x!.entry.mode, 0o4755);
    assert.equal(x!.data.toString(), 'abc');
    assert.deepEqual([c!.entry.type, c!.entry.devmajor, c!.entry.devminor], ['char', 4, 64]);
    assert.equal(f!.entry.type, 'fifo');
  });

  it('fails clearly on corruption, truncation and oversized records, never hangs', async () => {
    const good = encodeEntry({ path: 'a', type: 'file', content: 'x'.repeat(600) });
    const badSum = Buffer.from(good);
    badSum[0] = 0x41;
    await assert.rejects(collect(badSum), /bad tar header checksum at byte 0/);
    await assert.rejects(collect(good.subarray(0, 700)), /ends inside "a"/);
    await assert.rejects(collect(good.subarray(0, 300)), /truncated at byte 0/);
    const longName = buildTar([{ path: 'n'.repeat(70_000), type: 'file' }]);
    const gnuLong = Buffer.concat([encodeEntry({ path: '././@LongLink', type: 'file', content: 'n'.repeat(70_000) })]);
    gnuLong[156] = 'L'.charCodeAt(0);
    let sum = 0;
    gnuLong.fill(0x20, 148, 156);
    for (let i = 0; i < 512; i++) sum += gnuLong[i]!;
    gnuLong.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    await assert.rejects(collect(gnuLong), /GNU long name record of 70000 bytes exceeds/);
    assert.equal((await collect(longName))[0]!.entry.path.length, 70_000, 'a long PAX path under the PAX cap is fine');
  });

  it('accepts an archive without the end marker, and ignores what follows the marker', async () => {
    const one = encodeEntry({ path: 'a', type: 'file', content: 'x' });
    assert.equal((await collect(one)).length, 1);
    assert.equal((await collect(Buffer.concat([buildTar([{ path: 'a', type: 'file' }]), Buffer.from('garbage')]))).length, 1);
  });
});

describe('PAX times', () => {
  it('keeps every nanosecond digit, which a float cannot', () => {
    assert.deepEqual(parsePaxTime('1795705370.808919255'), { sec: 1795705370, nsec: 808919255 });
    assert.deepEqual(parsePaxTime('5'), { sec: 5, nsec: 0 });
    assert.deepEqual(parsePaxTime('1.5'), { sec: 1, nsec: 500_000_000 });
    assert.deepEqual(parsePaxTime('-1.25'), { sec: -2, nsec: 750_000_000 });
    assert.deepEqual(parsePaxTime('1.1234567891'), { sec: 1, nsec: 123456789 });
    assert.equal(parsePaxTime('1e9'), undefined);
  });
});

describe('entry paths and whiteouts', () => {
  it('normalizes and refuses escapes', () => {
    assert.deepEqual(normalizeEntryPath('./a/b/../c/'), ['a', 'c']);
    assert.deepEqual(normalizeEntryPath('/etc/passwd'), ['etc', 'passwd']);
    assert.deepEqual(normalizeEntryPath('./'), []);
    assert.equal(normalizeEntryPath('../x'), undefined);
    assert.equal(normalizeEntryPath('a/../../x'), undefined);
  });
  it('places an entry exactly where normalization puts it, with or without the shortcut', () => {
    const samples = ['./', '.', '/', '', 'a', './a', '/a/', '//a//b', './a/b/', 'a/./b', 'a/b/.', 'a/..', '..', '../x', 'a/../../x', './/a', '/./a/', '...', 'a/.../b', '.a/..b/c.', 'a/b/..', '.wh..wh..opq', './usr/bin/.wh.ls', 'a//', './/'];
    for (const path of samples) {
      const parts = normalizeEntryPath(path);
      const expected = parts && { parent: parts.slice(0, -1).join('/'), name: parts[parts.length - 1] ?? '' };
      assert.deepEqual(entryPlace(path), expected, path);
      assert.equal(normalizedEntryPath(path), parts?.join('/'), path);
    }
    assert.deepEqual(entryPlace('./usr/bin/ls'), { parent: 'usr/bin', name: 'ls' });
    assert.deepEqual(entryPlace('./usr/lib/'), { parent: 'usr', name: 'lib' });
  });
  it('classifies whiteouts', () => {
    assert.deepEqual(whiteoutOf('.wh..wh..opq'), { kind: 'opaque' });
    assert.deepEqual(whiteoutOf('.wh.foo'), { kind: 'remove', name: 'foo' });
    assert.deepEqual(whiteoutOf('foo'), { kind: 'none' });
    for (const bad of ['.wh.', '.wh..', '.wh...', '.wh..wh.plnk']) assert.deepEqual(whiteoutOf(bad), { kind: 'invalid' }, bad);
  });
});
