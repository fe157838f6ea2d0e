import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { buildLayerIndex } from '../../../src/index/layer-index.js';
import { LayerReader, SpanCache } from '../../../src/vfs/layer-reader.js';
import { sha256Of, type Digest } from '../../../src/digest.js';
import type { RangeReadOptions, RangeSource } from '../../../src/blob/range-source.js';
import { buildTar } from '../../../src/tar/tar-writer.js';
import { busyboxBinary } from '../../support/fixtures.js';
import { DiskSpanStore } from '../../../src/cache/disk-span-store.js';
import { tempDir } from '../../support/temp.js';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from '../../support/run.js';

class MemorySource implements RangeSource {
  calls: [number, number][] = [];
  constructor(private readonly blob: Buffer) {}
  async read(_digest: Digest, start: number, end: number): Promise<Buffer> {
    this.calls.push([start, end]);
    await new Promise((r) => setTimeout(r, 5));
    return this.blob.subarray(start, end);
  }
}

/** Serves the blobs of `served` by range, noting each call. */
function blobSource(served: Map<string, Buffer>): { calls: { digest: string; start: number; end: number }[]; source: RangeSource } {
  const calls: { digest: string; start: number; end: number }[] = [];
  const source: RangeSource = {
    read: async (digest: Digest, start: number, end: number) => {
      calls.push({ digest, start, end });
      return served.get(digest)!.subarray(start, end);
    },
  };
  return { calls, source };
}

async function setup(format: 'gzip' | 'tar', disk?: DiskSpanStore) {
  const files = Array.from({ length: 12 }, (_, i) => ({ path: `f${i}`, type: 'file' as const, content: Buffer.concat([busyboxBinary().subarray(i * 1000, i * 1000 + 400_000), Buffer.from(`file ${i}`)]) }));
  const tar = buildTar(files);
  const blob = format === 'gzip' ? gzipSync(tar) : tar;
  const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, { grid: 256 * 1024 });
  const source = new MemorySource(blob);
  return { tar, index, reader: new LayerReader(index, source, new SpanCache(64 * 1024 * 1024, disk)), source, blob };
}

/** A zstd blob of `tar`, made by the zstd tool (fzstd only decodes). */
async function zstdOf(tar: Buffer): Promise<Buffer> {
  const tmp = await tempDir('zstd');
  try {
    await writeFile(join(tmp.path, 'l.tar'), tar);
    await runOk('zstd', ['-q', '-3', join(tmp.path, 'l.tar'), '-o', join(tmp.path, 'l.tar.zst')]);
    return await readFile(join(tmp.path, 'l.tar.zst'));
  } finally {
    await tmp.remove();
  }
}

describe('lazy layer reader', () => {
  it('zstd: decoded once into slices; reads larger than the memory cache never fetch or decode again', async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ path: `f${i}`, type: 'file' as const, content: Buffer.concat([busyboxBinary().subarray(i * 1000, i * 1000 + 400_000), Buffer.from(`file ${i}`)]) }));
    const tar = buildTar(files);
    const blob = await zstdOf(tar);
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, { grid: 256 * 1024 });
    assert.equal(index.format, 'zstd');
    const tmp = await tempDir('zstd-spans');
    try {
      const disk = new DiskSpanStore(tmp.path);
      const source = new MemorySource(blob);
      // A memory cache far smaller than the layer (4.8 MB): before, each read fetched it again.
      const reader = new LayerReader(index, source, new SpanCache(512 * 1024, disk));
      for (let i = 0; i < 60; i++) {
        const offset = Math.floor(Math.random() * tar.length);
        const length = 1 + Math.floor(Math.random() * 300_000);
        assert.ok((await reader.read(offset, length)).equals(tar.subarray(offset, Math.min(offset + length, tar.length))));
      }
      assert.equal(source.calls.length, 1, `one fetch of the blob: ${JSON.stringify(source.calls)}`);
      // The slices are on disk: another mount of the layer reads them without fetching.
      // (stored in the background once the readers had their slices)
      const stored = () => readdir(join(tmp.path, index.layerDigest.slice(7))).then((names) => names.filter((n) => /^\d+$/.test(n)).length, () => 0);
      for (let i = 0; i < 100 && (await stored()) < reader.spanCount; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await stored(), reader.spanCount, 'every slice is on disk');
      await disk.flush();
      const other = new LayerReader(index, source, new SpanCache(512 * 1024, disk));
      assert.ok((await other.read(1_000_000, 2_000_000)).equals(tar.subarray(1_000_000, 3_000_000)));
      assert.equal(source.calls.length, 1, 'served from the disk cache');
    } finally {
      await tmp.remove();
    }
  });

  for (const format of ['gzip', 'tar'] as const) {
    it(`${format}: random reads equal the uncompressed tar`, async () => {
      const { tar, reader } = await setup(format);
      for (let i = 0; i < 200; i++) {
        const offset = Math.floor(Math.random() * tar.length);
        const length = 1 + Math.floor(Math.random() * 700_000);
        const got = await reader.read(offset, length);
        assert.ok(got.equals(tar.subarray(offset, Math.min(offset + length, tar.length))), `${offset}+${length}`);
      }
    });
  }

  it('reads in pieces: views of the spans in order, no copies; an empty read has none', async () => {
    const { tar, reader } = await setup('gzip');
    const inOne = await reader.readParts(1000, 100);
    assert.equal(inOne.length, 1);
    assert.ok(inOne[0]!.equals(tar.subarray(1000, 1100)));
    const across = await reader.readParts(200_000, 700_000);
    assert.ok(across.length >= 2, `spans of ${reader.spanCount} over ${tar.length} bytes`);
    assert.ok(Buffer.concat(across).equals(tar.subarray(200_000, 900_000)));
    // A view: the cached span itself, so a second read shares its memory.
    const again = await reader.readParts(1000, 100);
    assert.equal(again[0]!.buffer, inOne[0]!.buffer);
    assert.equal(again[0]!.byteOffset, inOne[0]!.byteOffset);
    assert.deepEqual(await reader.readParts(tar.length, 10), []);
  });

  it('concurrent readers of one span cause one fetch (single flight); a multi-span read is one request', async () => {
    const { tar, reader, source } = await setup('gzip');
    const results = await Promise.all(Array.from({ length: 20 }, () => reader.read(1000, 100)));
    assert.ok(results.every((r) => r.equals(tar.subarray(1000, 1100))));
    assert.equal(source.calls.length, 1);
    source.calls.length = 0;
    const wide = await reader.read(600_000, 1_500_000);
    assert.ok(wide.equals(tar.subarray(600_000, 2_100_000)));
    const demand = source.calls.filter(([start]) => start < 2_100_000);
    assert.ok(demand.length <= 2, `one request for the missing run (plus maybe a read-ahead): ${JSON.stringify(source.calls)}`);
    assert.ok(reader.spanCount > 5);
  });

  it('spans kept on disk serve a later reader without fetching; a corrupt one is fetched again; the size is bounded', async () => {
    const tmp = await tempDir('spans');
    try {
      const disk = new DiskSpanStore(tmp.path);
      const first = await setup('gzip', disk);
      const want = first.tar.subarray(100_000, 2_000_000);
      assert.ok((await first.reader.read(100_000, 1_900_000)).equals(want));
      // Disk copies follow the reads in the background; flush() waits for them.
      await disk.flush();
      const again = new LayerReader(first.index, first.source, new SpanCache(64 * 1024 * 1024, disk));
      first.source.calls.length = 0;
      assert.ok((await again.read(100_000, 1_900_000)).equals(want));
      assert.equal(first.source.calls.length, 0, 'served from disk');
      const layerDir = join(tmp.path, first.index.layerDigest.slice(7));
      const spanFile = join(layerDir, (await readdir(layerDir)).sort()[0]!);
      const bytes = await readFile(spanFile);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
      await writeFile(spanFile, bytes);
      const third = new LayerReader(first.index, first.source, new SpanCache(64 * 1024 * 1024, disk));
      assert.ok((await third.read(100_000, 1_900_000)).equals(want), 'a corrupt span is never served');
      assert.equal(first.source.calls.length, 1, 'only the corrupt span was fetched again');
      await disk.flush();

      // A span file in the wrong place (copied over another span's, whole and self-consistent)
      // is not that span: it is fetched again, never served as wrong bytes.
      const names = (await readdir(layerDir)).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
      await writeFile(join(layerDir, names[1]!), await readFile(join(layerDir, names[0]!)));
      first.source.calls.length = 0;
      const fourth = new LayerReader(first.index, first.source, new SpanCache(64 * 1024 * 1024, disk));
      assert.ok((await fourth.read(100_000, 1_900_000)).equals(want), 'a misplaced span is never served');
      assert.equal(first.source.calls.length, 1, 'the misplaced span was fetched again');
      await disk.flush();

      const small = new DiskSpanStore(join(tmp.path, 'small'), 600 * 1024);
      const bounded = await setup('tar', small);
      await bounded.reader.read(0, 3_000_000);
      await small.flush();
      const files = await readdir(join(tmp.path, 'small', bounded.index.layerDigest.slice(7)));
      assert.ok(files.filter((f) => !f.includes('.tmp')).length <= 1, `bounded to ~600 KiB: ${files.join(' ')}`);
    } finally {
      await tmp.remove();
    }
  });

  it('an index without its windows at hand fetches each one by range, checked against the index', async () => {
    const { tar, index, blob } = await setup('gzip');
    const { blob: windows, ...table } = index.windows;
    const served = new Map<string, Buffer>([[index.layerDigest, blob], [table.digest, Buffer.from(windows!)]]);
    const { calls, source } = blobSource(served);
    const remote = { ...index, windows: table };
    const reader = new LayerReader(remote, source, new SpanCache());
    assert.ok((await reader.read(1_500_000, 600_000)).equals(tar.subarray(1_500_000, 2_100_000)));
    const windowCalls = calls.filter((c) => c.digest === table.digest);
    assert.equal(windowCalls.length, 1, 'one window for one run of spans');
    assert.ok(windowCalls[0]!.end - windowCalls[0]!.start < 40_000, 'a window, not the blob');

    const tampered = Buffer.from(windows!);
    for (let i = 0; i < tampered.length; i += 97) tampered.writeUInt8(tampered.readUInt8(i) ^ 0x55, i);
    served.set(table.digest, tampered);
    const fooled = new LayerReader(remote, source, new SpanCache());
    await assert.rejects(fooled.read(3_000_000, 10), { code: 'INDEX_INVALID' });
  });

  it('the first span of a long run is served as soon as its bytes are in, before the response ends', async () => {
    const { tar, index, blob } = await setup('gzip');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let completed = false;
    const source: RangeSource = {
      read: async (_digest: Digest, start: number, end: number, options?: RangeReadOptions) => {
        const out = Buffer.from(blob.subarray(start, end));
        const head = Math.floor((end - start) / 3);
        options?.onProgress?.(out, head);
        await gate;
        options?.onProgress?.(out, out.length);
        completed = true;
        return out;
      },
    };
    const reader = new LayerReader(index, source, new SpanCache());
    // One request for the whole run (a read of 3 MB); then a reader of its first bytes.
    const wide = reader.fetchAhead(0, 3_000_000);
    const head = await reader.read(10, 1000);
    assert.ok(head.equals(tar.subarray(10, 1010)));
    assert.equal(completed, false, 'served from the head of the response');
    release();
    await wide;
    assert.ok((await reader.read(2_000_000, 500_000)).equals(tar.subarray(2_000_000, 2_500_000)), 'later spans resume from the window the earlier ones left');
  });

  it('fetches say who waits: the whole-file fetch of a first read goes out at once, read-aheads and prefetches may wait to share a request', async () => {
    const { index, blob } = await setup('gzip');
    const asked: { start: number; background: boolean }[] = [];
    const source: RangeSource = {
      read: async (_digest: Digest, start: number, end: number, options?: RangeReadOptions) => {
        asked.push({ start, background: options?.background === true });
        return blob.subarray(start, end);
      },
    };
    const reader = new LayerReader(index, source, new SpanCache());
    reader.prefetch(0, 300_000, false);
    await reader.read(0, 300_000);
    assert.ok(asked.length > 0 && asked.every((a) => !a.background), 'the whole-file fetch of a first read is not background');
    asked.length = 0;
    reader.prefetch(1_000_000, 300_000);
    await reader.read(1_000_000, 300_000);
    assert.ok(asked.length > 0 && asked.every((a) => a.background), 'a prefetch is');
    asked.length = 0;
    // Sequential reads past the middle of a span earn a read-ahead, in the background.
    for (let at = 2_000_000; at < 2_600_000; at += 100_000) await reader.read(at, 100_000);
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(asked.some((a) => a.background) && asked.some((a) => !a.background), 'reads wait, read-aheads do not');
  });

  it('a sequential reader is read ahead, but not past the end of the file it reads', async () => {
    const small = busyboxBinary().subarray(0, 200 * 1024);
    const tar = buildTar([
      { path: 'small', type: 'file' as const, content: small },
      { path: 'next', type: 'file' as const, content: busyboxBinary() },
    ]);
    const blob = gzipSync(tar);
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, { grid: 16 * 1024 });
    const source = new MemorySource(blob);
    const reader = new LayerReader(index, source, new SpanCache());
    const entry = index.entries.find((e) => e.path === 'small')!;
    for (let at = 0; at < entry.size; at += 32 * 1024) assert.ok((await reader.readEntry(entry, at, 32 * 1024)).equals(small.subarray(at, at + 32 * 1024)));
    await new Promise((r) => setTimeout(r, 50));
    const fileEnd = index.checkpoints.find((p) => p.uncompressedOffset >= entry.dataOffset + entry.size);
    const limit = fileEnd ? fileEnd.compressedOffset + 1 : blob.length;
    assert.ok(Math.max(...source.calls.map(([, end]) => end)) <= limit, `fetched up to ${Math.max(...source.calls.map(([, end]) => end))}, the file's cells end at ${limit}`);
    // Read on as a sequential reader of the whole layer: read ahead into what follows.
    const calls = source.calls.length;
    for (let at = entry.dataOffset + entry.size; at < entry.dataOffset + entry.size + 256 * 1024; at += 32 * 1024) await reader.read(at, 32 * 1024);
    await new Promise((r) => setTimeout(r, 50));
    const beyondReads = index.checkpoints.find((p) => p.uncompressedOffset >= entry.dataOffset + entry.size + 384 * 1024)!.compressedOffset;
    assert.ok(source.calls.slice(calls).some(([, end]) => end > beyondReads), `a layer reader without a file end reads ahead past ${beyondReads}: ${JSON.stringify(source.calls.slice(calls))}`);
  });

  it('cells shorter than a window: a read resuming after cached cells takes its 32 KiB window from as many of them as it needs', async () => {
    // 30 KiB of noise repeated: every block refers 30 KiB back. memLevel 1 makes blocks of a
    // few KiB, so the 16 KiB grid cuts cells shorter than a 32 KiB window.
    const noise = busyboxBinary().subarray(0, 30 * 1024);
    const tar = buildTar([{ path: 'f', type: 'file' as const, content: Buffer.concat(Array.from({ length: 60 }, () => noise)) }]);
    const blob = gzipSync(tar, { memLevel: 1 });
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, { grid: 16 * 1024, windowSpacing: 64 * 1024 * 1024 });
    const cells = index.checkpoints.map((p, i) => (index.checkpoints[i + 1]?.uncompressedOffset ?? index.uncompressedSize) - p.uncompressedOffset);
    assert.ok(cells.slice(0, -1).some((n) => n < 32 * 1024), `cells of ${cells.slice(0, 8).join(', ')} … bytes`);
    const reader = new LayerReader(index, new MemorySource(blob), new SpanCache());
    const middle = index.checkpoints[Math.floor(index.checkpoints.length / 2)]!.uncompressedOffset;
    assert.ok((await reader.read(0, middle)).equals(tar.subarray(0, middle)));
    // Only the cells up to `middle` are cached: this read resumes right after them.
    assert.ok((await reader.read(middle, 100_000)).equals(tar.subarray(middle, middle + 100_000)));
  });

  it('fine cells, sparse windows: a read starts at the keyed point before it, or resumes from the cached cell before it without a window', async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ path: `f${i}`, type: 'file' as const, content: Buffer.concat([busyboxBinary().subarray(i * 1000, i * 1000 + 400_000), Buffer.from(`file ${i}`)]) }));
    const tar = buildTar(files);
    const blob = gzipSync(tar);
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, { grid: 64 * 1024, windowSpacing: 256 * 1024 });
    const keyed = index.checkpoints.filter((p) => p.window >= 0);
    assert.ok(index.checkpoints.length >= 3 * keyed.length, `${index.checkpoints.length} points, ${keyed.length} with a window`);
    const { blob: windows, ...table } = index.windows;
    const served = new Map<string, Buffer>([[index.layerDigest, blob], [table.digest, Buffer.from(windows!)]]);
    const { calls, source } = blobSource(served);
    const reader = new LayerReader({ ...index, windows: table }, source, new SpanCache());
    // A cell whose point has no window, far from the start: fetched from the keyed point before it.
    const target = index.checkpoints.findIndex((p, i) => i > 8 && p.window < 0 && index.checkpoints[i - 1]!.window < 0);
    const point = index.checkpoints[target]!;
    const startOf = (p: { compressedOffset: number; bits: number }) => p.compressedOffset - (p.bits ? 1 : 0);
    assert.ok((await reader.read(point.uncompressedOffset + 10, 1000)).equals(tar.subarray(point.uncompressedOffset + 10, point.uncompressedOffset + 1010)));
    const keyedBefore = [...index.checkpoints.slice(0, target + 1)].reverse().find((p) => p.window >= 0)!;
    const layerCalls = () => calls.filter((c) => c.digest === index.layerDigest);
    assert.equal(layerCalls().length, 1);
    assert.equal(layerCalls()[0]!.start, startOf(keyedBefore), 'starts at the keyed point before');
    assert.ok(layerCalls()[0]!.end <= index.checkpoints[target + 1]!.compressedOffset + 1, 'stops where the cell ends');
    assert.equal(calls.filter((c) => c.digest === table.digest).length, 1, 'one window');
    // The next cell: resumed from the cached one before it, no window fetched.
    calls.length = 0;
    const next = index.checkpoints[target + 1]!;
    assert.ok((await reader.read(next.uncompressedOffset, 2000)).equals(tar.subarray(next.uncompressedOffset, next.uncompressedOffset + 2000)));
    assert.deepEqual(calls.map((c) => [c.digest === index.layerDigest, c.start]), [[true, startOf(next)]], 'one fetch from that cell on, no window');
    // Random reads across the layer stay exact.
    for (let i = 0; i < 100; i++) {
      const offset = Math.floor(Math.random() * tar.length);
      const length = 1 + Math.floor(Math.random() * 200_000);
      assert.ok((await reader.read(offset, length)).equals(tar.subarray(offset, Math.min(offset + length, tar.length))), `${offset}+${length}`);
    }
  });
});
