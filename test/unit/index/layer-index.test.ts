import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { brotliCompressSync, brotliDecompressSync, deflateRawSync, gzipSync } from 'node:zlib';
import { buildLayerIndex, type LayerIndex } from '../../../src/index/layer-index.js';
import { encodeIndex, decodeIndex, isCurrentFormat } from '../../../src/index/index-codec.js';
import { INDEX_FORMAT_VERSION } from '../../../src/index/index-format.js';
import { IndexStore } from '../../../src/index/index-store.js';
import { planGzipRead, extractGzipRange, pointByte } from '../../../src/gzip/gzip-index.js';
import { tableOf, unpackWindow, windowFromBlob } from '../../../src/index/window-table.js';
import { sha256Of } from '../../../src/digest.js';
import { MergedTree, type ReadSpan } from '../../../src/vfs/merged-tree.js';
import { LayerApplier } from '../../../src/materialize/layer-applier.js';
import { parseTar } from '../../../src/tar/tar-parser.js';
import type { TarEntry } from '../../../src/tar/tar-entry.js';
import { edgeCaseLayers } from '../../support/fixtures.js';
import { recordsOfMergedTree } from '../../support/merged-tree-records.js';
import { diffTrees, snapshotTree } from '../../support/tree-snapshot.js';
import { tempDir } from '../../support/temp.js';
import { runOk } from '../../support/run.js';

const chunks = (buf: Buffer, size = 50_000) => Readable.from(Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size)));

async function indexOf(blob: Buffer, span = 64 * 1024): Promise<LayerIndex> {
  return buildLayerIndex(chunks(blob), sha256Of(blob), blob.length, { grid: span, windowSpacing: span });
}

async function entriesOf(tar: Buffer): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  await parseTar(Readable.from([tar]), (e) => {
    entries.push(e);
  });
  return entries;
}

/** Reads a file's bytes the lazy way: nearest checkpoint, compressed range, inflate. */
function lazyReader(blobs: Buffer[], indexes: LayerIndex[]): (span: ReadSpan) => Buffer {
  return (span) => {
    const index = indexes[span.layer]!;
    const blob = blobs[span.layer]!;
    if (index.format === 'tar') return blob.subarray(span.offset, span.offset + span.length);
    const plan = planGzipRead(index.checkpoints, blob.length, span.offset, span.length);
    const window = windowFromBlob(index.windows, index.windows.blob!, plan.checkpoint.window);
    return extractGzipRange(plan.checkpoint, window, blob.subarray(plan.start, plan.end), span.offset, span.length);
  };
}

describe('layer index', () => {
  it('a merged tree built from indexes alone, read through gzip checkpoints, equals the disk applier', async () => {
    const tars = edgeCaseLayers();
    const blobs = [gzipSync(tars[0]!), tars[1]!, gzipSync(tars[2]!)];
    const indexes = await Promise.all(blobs.map((b) => indexOf(b)));
    assert.deepEqual(indexes.map((i) => i.format), ['gzip', 'tar', 'gzip']);
    assert.ok(indexes[0]!.checkpoints.length >= 5, `${indexes[0]!.checkpoints.length} checkpoints in the busybox layer at a 64 KiB span`);
    // The index adds what each file will ask for (file-hints.ts): busybox, static, asks for nothing.
    assert.deepEqual(indexes[0]!.entries.map(({ deps: _deps, ...e }) => e), await entriesOf(tars[0]!));
    const busybox = indexes[0]!.entries.find((e) => e.type === 'file' && e.size > 100_000)!;
    assert.deepEqual(busybox.deps, [], 'an ELF file: known to need nothing');
    assert.equal(indexes[0]!.uncompressedSize, tars[0]!.length);

    const tree = new MergedTree();
    for (const index of indexes) await tree.addLayerEntries(index.entries);
    const tmp = await tempDir('idx');
    try {
      const root = join(tmp.path, 'root');
      await mkdir(root);
      const applier = new LayerApplier(root, { warn: () => undefined });
      for (const tar of tars) await applier.applyLayer(Readable.from([tar]));
      assert.deepEqual(diffTrees(await snapshotTree(root), recordsOfMergedTree(tree, lazyReader(blobs, indexes))), []);
    } finally {
      await tmp.remove();
    }
  });

  it('sparse windows: every keyed point inflates the same bytes as with its whole window, from a blob a fraction of the size', async () => {
    const tar = edgeCaseLayers()[0]!;
    const blob = gzipSync(tar, { level: 6 });
    const density = { grid: 16 * 1024, windowSpacing: 32 * 1024 };
    const whole = await buildLayerIndex(chunks(blob), sha256Of(blob), blob.length, density);
    for (const source of [chunks(blob, 7_000), chunks(blob), Readable.from([blob])]) {
      const sparse = await buildLayerIndex(source, sha256Of(blob), blob.length, { ...density, sparseWindows: true });
      assert.deepEqual(sparse.checkpoints, whole.checkpoints, 'the same points, keyed alike');
      assert.ok(sparse.windows.size < whole.windows.size / 2, `windows blob ${sparse.windows.size} bytes against ${whole.windows.size}`);
      let checked = 0;
      for (const point of sparse.checkpoints) {
        if (point.window < 0) continue;
        const window = windowFromBlob(sparse.windows, sparse.windows.blob!, point.window);
        const length = Math.min(100_000, tar.length - point.uncompressedOffset);
        const data = extractGzipRange(point, window, blob.subarray(pointByte(point)), point.uncompressedOffset, length);
        assert.ok(data.equals(tar.subarray(point.uncompressedOffset, point.uncompressedOffset + length)), `from the point at ${point.uncompressedOffset}`);
        checked++;
      }
      assert.ok(checked >= 10, `${checked} keyed points`);
    }
  });

  it('indexes zstd layers with a full pass (no checkpoints)', async () => {
    const tmp = await tempDir('zst');
    try {
      const tar = edgeCaseLayers()[1]!;
      await writeFile(join(tmp.path, 'l.tar'), tar);
      await runOk('zstd', ['-q', join(tmp.path, 'l.tar'), '-o', join(tmp.path, 'l.zst')]);
      const index = await indexOf(await readFile(join(tmp.path, 'l.zst')));
      assert.equal(index.format, 'zstd');
      assert.equal(index.checkpoints.length, 0);
      assert.deepEqual(index.entries, await entriesOf(tar));
    } finally {
      await tmp.remove();
    }
  });

  it('refuses a blob that does not match its digest', async () => {
    const blob = gzipSync(edgeCaseLayers()[2]!);
    await assert.rejects(buildLayerIndex(chunks(blob), sha256Of(Buffer.from('other')), blob.length), { code: 'DIGEST_MISMATCH' });
  });

  it('a seek window that inflates past 32 KiB is refused at that size, not inflated whole', () => {
    const bomb = Buffer.alloc(64 * 1024 * 1024);
    const packed = deflateRawSync(bomb);
    const table = tableOf([{ packed, sha256: createHash('sha256').update(bomb).digest() }]);
    assert.throws(() => unpackWindow(table, 0, packed), (err: Error & { code?: string }) => err.code === 'INDEX_INVALID' && /does not inflate/.test(err.message));
  });

  it('round-trips through the on-disk format, and a corrupt, foreign or newer file is never trusted', async () => {
    const blob = gzipSync(edgeCaseLayers()[0]!);
    const index = await indexOf(blob);
    const encoded = encodeIndex(index);
    const { blob: windows, ...windowTable } = stored(index).windows;
    assert.deepEqual(decodeIndex(encoded), { ...stored(index), windows: windowTable }, 'the index file names its windows (by 128-bit hashes); they are kept apart');
    assert.ok(windows && windows.length === index.windows.size);
    assert.ok(encoded.length < blob.length / 10, `index ${encoded.length} bytes (+ ${windows.length} of windows) for a ${blob.length}-byte layer at a 64 KiB span`);
    const tmp = await tempDir('store');
    try {
      const store = new IndexStore(tmp.path);
      const bytes = await store.save(index);
      const path = store.pathFor(index.layerDigest);
      assert.deepEqual(await store.load(index.layerDigest, index.compressedSize), { index: stored(index), bytes, encoded }, 'with its windows from beside it, and the file as stored (the same bytes: the same digest)');
      // For a push: the files as stored, checked but not decoded.
      assert.deepEqual(await store.files(index.layerDigest, index.compressedSize), { layerDigest: index.layerDigest, encoded, windows: { digest: index.windows.digest, size: index.windows.size, blob: windows } });
      assert.equal(await store.files(index.layerDigest, index.compressedSize + 1), undefined, 'another layer of the same digest? not this index');
      const reasons: string[] = [];
      // A damaged windows file beside a locally built index: no registry holds those windows, so
      // the index is dropped (and rebuilt by the caller) instead of sending every read to a 404.
      await writeFile(path.replace(/\.idx$/, '.windows'), Buffer.concat([windows, Buffer.from('x')]));
      assert.equal(await store.load(index.layerDigest, index.compressedSize, (r) => reasons.push(r)), undefined, 'damaged windows: the index goes too');
      assert.match(reasons.pop() ?? '', /seek windows of layer index .* are damaged/);
      await assert.rejects(stat(path), 'the index file is removed');
      await assert.rejects(stat(path.replace(/\.idx$/, '.windows')), 'the windows file is removed');
      await store.save(index);
      await rm(path.replace(/\.idx$/, '.windows'));
      assert.equal((await store.files(index.layerDigest, index.compressedSize))?.windows.blob, undefined, 'no windows file: the push places them from the registry');
      assert.deepEqual(await store.load(index.layerDigest, index.compressedSize), { index: { ...stored(index), windows: windowTable }, bytes, encoded }, 'no windows file (an index from the registry): windows come by range');
      assert.equal(await store.load(index.layerDigest, index.compressedSize + 1, (r) => reasons.push(r)), undefined, 'foreign: another size');
      await store.save(index);
      const corrupt = Buffer.from(encoded);
      corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 100) ^ 1, corrupt.length - 100);
      await writeFile(path, corrupt);
      assert.equal(await store.load(index.layerDigest, index.compressedSize, (r) => reasons.push(r)), undefined);
      const newer = Buffer.from(encoded);
      newer.writeUInt32LE(99, 8);
      await writeFile(path, newer);
      assert.equal(await store.load(index.layerDigest, index.compressedSize, (r) => reasons.push(r)), undefined);
      assert.equal(reasons.length, 3);
      assert.match(reasons[0]!, /describes sha256:.* not sha256:/);
      assert.match(reasons[1]!, /checksum mismatch/);
      assert.match(reasons[2]!, /format version 99/);
      await assert.rejects(readFile(path), 'an untrusted file is removed so it gets rebuilt');
    } finally {
      await tmp.remove();
    }
  });

  for (const [version, encodeLegacy] of [
    [3, encodeV3],
    [4, encodeV4],
    [5, encodeV5],
  ] as const) {
    it(`reads format ${version} (as krgo before pushed it) and converts a cached one once`, async () => {
      const blob = gzipSync(edgeCaseLayers()[0]!);
      const index = await indexOf(blob);
      // Format 3 keyed every point; the fixture is such a layer, so both formats hold it whole.
      assert.ok(index.checkpoints.every((p, i) => p.window === i), 'fixture: every point keyed');
      const legacy = encodeLegacy(index);
      const { blob: windows, ...windowTable } = index.windows;
      assert.deepEqual(decodeIndex(legacy), { ...index, windows: windowTable });
      const tmp = await tempDir(`store-v${version}`);
      try {
        const store = new IndexStore(tmp.path);
        const legacyPath = store.pathFor(index.layerDigest, version);
        await mkdir(dirname(legacyPath), { recursive: true });
        await writeFile(legacyPath, legacy);
        await writeFile(legacyPath.replace(/\.idx$/, '.windows'), windows!);
        const loaded = await store.load(index.layerDigest, index.compressedSize);
        assert.deepEqual(loaded?.index, index, 'with its windows');
        await assert.rejects(stat(legacyPath), `the format ${version} file is gone`);
        assert.ok((await stat(store.pathFor(index.layerDigest))).isFile(), 'converted to the current format');
        assert.deepEqual((await store.load(index.layerDigest, index.compressedSize))?.index, stored(index), 'and read back from it');
        // A file of this format fetched from a registry is stored in the current one too.
        const other = new IndexStore(join(tmp.path, 'fetched'));
        await other.save(decodeIndex(legacy), legacy);
        assert.ok(isCurrentFormat(await readFile(other.pathFor(index.layerDigest))), 'stored as the current format');
      } finally {
        await tmp.remove();
      }
    });
  }

  it('format 6 stores entries in columns and windows by length and cut hash: smaller than formats 5 and 4, and the same index back', async () => {
    const built = await indexOf(gzipSync(edgeCaseLayers()[0]!));
    const index = { ...built, entries: built.entries.map((e, i) => ({ ...e, atime: 1_700_000_000 + i * 7, atimeNsec: i })) };
    const current = encodeIndex(index);
    assert.deepEqual(decodeIndex(current), { ...stored(index), windows: (({ blob: _b, ...t }) => t)(stored(index).windows) });
    assert.ok(decodeBody(current).length < decodeBody(encodeV5(index)).length, 'format 6 takes less than 5');
    assert.ok(decodeBody(encodeV5(index)).length < decodeBody(encodeV4(index)).length, 'columns take less than tuples');
  });

  it('a window table not packed in order is refused, in any format', async () => {
    const index = await indexOf(gzipSync(edgeCaseLayers()[0]!));
    assert.ok(index.windows.refs.length >= 2, 'fixture: two windows at least');
    const [first, second, ...rest] = index.windows.refs;
    const swapped = { ...index, windows: { ...index.windows, refs: [{ ...first!, offset: second!.length }, { ...second!, offset: 0 }, ...rest] } };
    assert.throws(() => encodeIndex(swapped), (err: Error & { code?: string }) => err.code === 'INDEX_INVALID');
    assert.throws(() => decodeIndex(encodeV5(swapped)), (err: Error & { code?: string }) => err.code === 'INDEX_INVALID' && /does not follow/.test(err.message));
  });

  it('format 6 columns that do not add up are INDEX_INVALID, never trusted', async () => {
    const built = await indexOf(gzipSync(edgeCaseLayers()[0]!));
    // Two entries with an atime (as PAX headers give), the rest without.
    const index = { ...built, entries: built.entries.map((e, i) => (i === 1 || i === 3 ? { ...e, atime: 1_700_000_000 + i, atimeNsec: 5 } : e)) };
    const file = encodeIndex(index);
    type Columns = { entries: Record<string, unknown[]>; points: Record<string, unknown[]> };
    /** The same file with its body's JSON changed (the checksum made right again). */
    const withColumns = (change: (columns: Columns) => void): Buffer => {
      const body = decodeBody(file);
      const length = body.readUInt32LE(0);
      const columns = JSON.parse(body.toString('utf8', 4, 4 + length)) as Columns;
      change(columns);
      const json = Buffer.from(JSON.stringify(columns));
      const header = file.subarray(16, 16 + file.readUInt32LE(12));
      return legacyFile(INDEX_FORMAT_VERSION, JSON.parse(header.toString('utf8')) as object, Buffer.concat([u32(json.length), json, body.subarray(4 + length)]));
    };
    assert.deepEqual(decodeIndex(withColumns(() => undefined)).entries, index.entries, 'fixture: unchanged, it decodes');
    const atimes = (c: Columns) => c.entries['atime'] as unknown as { entry: number[]; time: number[] };
    for (const [why, change] of [
      ['a column short of a value', (c: Columns) => c.entries['mode']!.pop()],
      ['an unknown type', (c: Columns) => (c.entries['type']![0] = 99)],
      ['a path that is not a string', (c: Columns) => (c.entries['path']![0] = 7)],
      ['atimes out of entry order', (c: Columns) => (atimes(c).entry = [3, -2])],
      ['an atime column short of a value', (c: Columns) => atimes(c).time.pop()],
      ['a hint column naming no entry', (c: Columns) => c.entries['deps']!.push([1e9, ['py:os']])],
      ['a seek point naming no window', (c: Columns) => (c.points['window']![0] = 1e6)],
    ] as const) {
      assert.throws(() => decodeIndex(withColumns(change)), (err: Error & { code?: string }) => err.code === 'INDEX_INVALID', why);
    }
  });
});

/** Entries as formats 3 and 4 wrote them: one JSON tuple each. */
function entryTuples(index: LayerIndex): Buffer {
  const types = ['file', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'];
  const tuples = index.entries.map((e) => {
    const xattrs = Object.keys(e.xattrs).length ? Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('base64')])) : 0;
    const tuple: unknown[] = [e.path, types.indexOf(e.type), e.mode, e.uid, e.gid, e.size, e.mtime, e.mtimeNsec, e.linkname, e.devmajor, e.devminor, e.dataOffset, e.headerOffset, xattrs];
    if (e.atime !== undefined || e.chunks || e.deps) tuple.push(e.atime ?? null, e.atime !== undefined ? (e.atimeNsec ?? 0) : null);
    if (e.chunks || e.deps) tuple.push(e.chunks ? e.chunks.map((c) => [c.fileOffset, c.size, c.memberOffset, c.innerOffset, ...(c.digest ? [c.digest] : [])]) : null);
    if (e.deps) tuple.push(e.deps);
    return tuple;
  });
  const json = Buffer.from(JSON.stringify(tuples));
  return Buffer.concat([u32(json.length), json]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function legacyFile(version: number, header: object, body: Buffer): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.concat([Buffer.from('KRGOIDX\0', 'latin1'), u32(version), u32(headerBytes.length), headerBytes, brotliCompressSync(body)]);
  return Buffer.concat([prefix, createHash('sha256').update(prefix).digest()]);
}

/** A built index as its file gives it back: the windows' hashes cut to 128 bits (format 6). */
function stored(index: LayerIndex): LayerIndex {
  return { ...index, windows: { ...index.windows, refs: index.windows.refs.map((r) => ({ ...r, sha256: r.sha256.subarray(0, 16) })) } };
}

/** Format 5 as krgo wrote it: columns with access times as tuples; per window f64 offset, u32 length, sha256. */
function encodeV5(index: LayerIndex): Buffer {
  const current = encodeIndex(index);
  const body = decodeBody(current);
  const length = body.readUInt32LE(0);
  const columns = JSON.parse(body.toString('utf8', 4, 4 + length)) as { entries: { atime: unknown } };
  columns.entries.atime = index.entries.flatMap((e, i) => (e.atime === undefined ? [] : [[i, e.atime, e.atimeNsec ?? 0]]));
  const json = Buffer.from(JSON.stringify(columns));
  const refs = Buffer.alloc(44 * index.windows.refs.length);
  index.windows.refs.forEach((ref, i) => {
    refs.writeDoubleLE(ref.offset, i * 44);
    refs.writeUInt32LE(ref.length, i * 44 + 8);
    ref.sha256.copy(refs, i * 44 + 12);
  });
  const header = JSON.parse(current.toString('utf8', 16, 16 + current.readUInt32LE(12))) as object;
  return legacyFile(5, header, Buffer.concat([u32(json.length), json, refs]));
}

/** Format 4 as krgo wrote it: tuples, then per point f64 in, u8 bits, f64 out, i32 window; per window f64 offset, u32 length, sha256. */
function encodeV4(index: LayerIndex): Buffer {
  const header = { layerDigest: index.layerDigest, compressedSize: index.compressedSize, uncompressedSize: index.uncompressedSize, format: index.format, grid: index.grid, windowSpacing: index.windowSpacing, entries: index.entries.length, checkpoints: index.checkpoints.length, windows: index.windows.refs.length, windowsDigest: index.windows.digest, windowsSize: index.windows.size };
  const points = Buffer.alloc(21 * index.checkpoints.length);
  index.checkpoints.forEach((cp, i) => {
    points.writeDoubleLE(cp.compressedOffset, i * 21);
    points.writeUInt8(cp.bits, i * 21 + 8);
    points.writeDoubleLE(cp.uncompressedOffset, i * 21 + 9);
    points.writeInt32LE(cp.window, i * 21 + 17);
  });
  const refs = Buffer.alloc(44 * index.windows.refs.length);
  index.windows.refs.forEach((ref, i) => {
    refs.writeDoubleLE(ref.offset, i * 44);
    refs.writeUInt32LE(ref.length, i * 44 + 8);
    ref.sha256.copy(refs, i * 44 + 12);
  });
  return legacyFile(4, header, Buffer.concat([entryTuples(index), points, refs]));
}

/** Format 3 as krgo wrote it: per point f64 in, u8 bits, f64 out, f64 window offset, u32 window length, sha256. */
function encodeV3(index: LayerIndex): Buffer {
  const header = { layerDigest: index.layerDigest, compressedSize: index.compressedSize, uncompressedSize: index.uncompressedSize, format: index.format, span: index.grid, entries: index.entries.length, checkpoints: index.checkpoints.length, windowsDigest: index.windows.digest, windowsSize: index.windows.size };
  const points = Buffer.alloc(61 * index.checkpoints.length);
  index.checkpoints.forEach((cp, i) => {
    const ref = index.windows.refs[i]!;
    points.writeDoubleLE(cp.compressedOffset, i * 61);
    points.writeUInt8(cp.bits, i * 61 + 8);
    points.writeDoubleLE(cp.uncompressedOffset, i * 61 + 9);
    points.writeDoubleLE(ref.offset, i * 61 + 17);
    points.writeUInt32LE(ref.length, i * 61 + 25);
    ref.sha256.copy(points, i * 61 + 29);
  });
  return legacyFile(3, header, Buffer.concat([entryTuples(index), points]));
}

function decodeBody(file: Buffer): Buffer {
  return brotliDecompressSync(file.subarray(16 + file.readUInt32LE(12), file.length - 32));
}
