import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants, createDeflateRaw, deflateRawSync, gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { GzipIndexBuilder, extractGzipRange, pointByte } from '../../../src/gzip/gzip-index.js';
import { referencedWindow } from '../../../src/gzip/window-references.js';
import { WINDOW_BYTES } from '../../../src/index/window-table.js';
import { busyboxBinary } from '../../support/fixtures.js';

/** Text, a real binary and random runs: matches near and far, literals, stored blocks. */
function sampleData(size: number): Buffer {
  const parts: Buffer[] = [];
  const binary = busyboxBinary();
  for (let i = 0, total = 0; total < size; i++) {
    const part = i % 3 === 0 ? Buffer.from(`line ${i} of a log with numbers ${i * 7919}\n`.repeat(40)) : i % 3 === 1 ? binary.subarray((i * 4099) % binary.length, ((i * 4099) % binary.length) + 20_000) : randomBytes(3000);
    parts.push(part);
    total += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

const nonZero = (b: Buffer) => b.reduce((n, x) => n + (x ? 1 : 0), 0);

describe('referencedWindow: the bytes of a window a deflate stream copies', () => {
  it('at every seek point of a real gzip stream (bit offsets too), the sparse window inflates the same bytes as the whole one', async () => {
    const data = sampleData(1_500_000);
    const gz = gzipSync(data, { level: 6 });
    const builder = new GzipIndexBuilder(16 * 1024, 16 * 1024);
    for await (const _ of builder.inflate(Readable.from([gz]))) {
      // the output is `data`
    }
    const points = builder.checkpoints.filter((cp) => cp.window && cp.uncompressedOffset >= WINDOW_BYTES);
    assert.ok(points.length > 20, 'enough seek points to check');
    assert.ok(points.some((cp) => cp.bits !== 0), 'some start inside a byte');
    let kept = 0;
    let whole = 0;
    for (const cp of points) {
      const compressed = gz.subarray(pointByte(cp));
      const expected = data.subarray(cp.uncompressedOffset, cp.uncompressedOffset + WINDOW_BYTES);
      const sparse = referencedWindow(cp.window!, compressed, cp.bits, expected);
      assert.ok(sparse, `point at ${cp.uncompressedOffset}`);
      assert.equal(sparse.length, cp.window!.length);
      const length = Math.min(3 * WINDOW_BYTES, data.length - cp.uncompressedOffset);
      const inflated = extractGzipRange(cp, sparse, compressed, cp.uncompressedOffset, length);
      assert.ok(inflated.equals(data.subarray(cp.uncompressedOffset, cp.uncompressedOffset + length)), `same output from ${cp.uncompressedOffset}`);
      kept += nonZero(sparse);
      whole += nonZero(cp.window!);
    }
    assert.ok(kept < whole, `fewer bytes kept (${kept} of ${whole})`);
    const packed = (ws: Buffer[]) => ws.reduce((n, w) => n + deflateRawSync(w).length, 0);
    const sparseOnes = points.map((cp) => referencedWindow(cp.window!, gz.subarray(pointByte(cp)), cp.bits, data.subarray(cp.uncompressedOffset, cp.uncompressedOffset + WINDOW_BYTES))!);
    assert.ok(packed(sparseOnes) < packed(points.map((cp) => cp.window!)), 'smaller once deflated');
  });

  it('a stream that copies from far back keeps those bytes; one that copies nothing keeps none', async () => {
    // Bytes below 128 in the window, above in the fresh part: no match between them by chance.
    const window = Buffer.from(randomBytes(WINDOW_BYTES).map((b) => b & 0x7f));
    const deflate = createDeflateRaw({ level: 9 });
    const chunks: Buffer[] = [];
    deflate.on('data', (c: Buffer) => chunks.push(c));
    const flushed = new Promise<void>((resolve) => deflate.write(window, () => deflate.flush(constants.Z_SYNC_FLUSH, () => resolve())));
    await flushed;
    const head = Buffer.concat(chunks).length;
    // 100 bytes from near the window's start (zlib looks back 32 KiB less 262 bytes at most), then 100 fresh bytes.
    const next = Buffer.concat([window.subarray(1000, 1100), Buffer.from(randomBytes(100).map((b) => b | 0x80))]);
    await new Promise<void>((resolve) => deflate.end(next, () => resolve()));
    await new Promise((resolve) => deflate.once('end', resolve));
    const stream = Buffer.concat(chunks).subarray(head);
    const sparse = referencedWindow(window, stream, 0, next)!;
    assert.ok(sparse.subarray(1000, 1100).equals(window.subarray(1000, 1100)), 'the copied bytes are kept');
    assert.equal(nonZero(sparse.subarray(0, 1000)) + nonZero(sparse.subarray(1100)), 0, 'nothing else');
    const fresh = deflateRawSync(randomBytes(500), { level: 9 });
    assert.equal(nonZero(referencedWindow(window, fresh, 0, Buffer.alloc(0))!), 0);
  });

  it('refuses what it cannot vouch for: other output, a cut stream, bytes that are not deflate', () => {
    const data = sampleData(200_000);
    const raw = deflateRawSync(data);
    const window = Buffer.alloc(WINDOW_BYTES);
    const expected = data.subarray(0, WINDOW_BYTES);
    assert.ok(referencedWindow(window, raw, 0, expected), 'the stream from its start');
    const wrong = Buffer.from(expected);
    wrong[5000] = wrong[5000]! ^ 1;
    assert.equal(referencedWindow(window, raw, 0, wrong), undefined, 'output that differs');
    assert.equal(referencedWindow(window, raw.subarray(0, 100), 0, expected), undefined, 'input that ends');
    assert.equal(referencedWindow(window, Buffer.alloc(4000, 0xff), 0, expected), undefined, 'not deflate');
  });
});
