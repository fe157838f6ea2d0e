import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync, gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { GzipIndexBuilder, planGzipRead, extractGzipRange, extractGzipRangeAsync } from '../../../src/gzip/gzip-index.js';
import { KrgoError } from '../../../src/errors.js';
import { busyboxBinary } from '../../support/fixtures.js';

/** Compressible but varied data: text, a real binary, random runs. */
function sampleData(size: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  const binary = busyboxBinary();
  for (let i = 0; total < size; i++) {
    const part = i % 3 === 0 ? Buffer.from(`line ${i} of some log text with numbers ${i * 7919}\n`.repeat(50)) : i % 3 === 1 ? binary.subarray((i * 4099) % binary.length, ((i * 4099) % binary.length) + 20_000) : randomBytes(3000);
    parts.push(part);
    total += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

async function build(gz: Buffer, span: number, chunk = 65_536): Promise<{ builder: GzipIndexBuilder; out: Buffer }> {
  const builder = new GzipIndexBuilder(span, span);
  const pieces: Buffer[] = [];
  for (let i = 0; i < gz.length; i += chunk) pieces.push(gz.subarray(i, i + chunk));
  const out: Buffer[] = [];
  for await (const b of builder.inflate(Readable.from(pieces))) out.push(b);
  return { builder, out: Buffer.concat(out) };
}

function randomReads(gz: Buffer, plain: Buffer, builder: GzipIndexBuilder, count: number): void {
  for (let i = 0; i < count; i++) {
    const offset = Math.floor(Math.random() * plain.length);
    const length = Math.min(1 + Math.floor(Math.random() * 300_000), plain.length - offset);
    const plan = planGzipRead(builder.checkpoints, gz.length, offset, length);
    const bytes = extractGzipRange(plan.checkpoint, plan.checkpoint.window!, gz.subarray(plan.start, plan.end), offset, length);
    assert.ok(bytes.equals(plain.subarray(offset, offset + length)), `read ${offset}+${length} from checkpoint at ${plan.checkpoint.uncompressedOffset} (bits ${plan.checkpoint.bits})`);
  }
}

describe('gzip random access (zran checkpoints)', () => {
  it('inflates exactly what gunzip does and reads 300 random ranges byte-exact', async () => {
    const plain = sampleData(12 * 1024 * 1024);
    const gz = gzipSync(plain, { level: 6 });
    const { builder, out } = await build(gz, 1024 * 1024, 7777);
    assert.equal(createHash('sha256').update(out).digest('hex'), createHash('sha256').update(plain).digest('hex'));
    assert.ok(builder.checkpoints.length >= 10, `${builder.checkpoints.length} checkpoints for 12 MiB at a 1 MiB span`);
    assert.ok(builder.checkpoints.some((c) => c.bits !== 0), 'some checkpoints fall inside a byte');
    assert.deepEqual(builder.totals, { compressed: gz.length, uncompressed: plain.length });
    randomReads(gz, plain, builder, 300);
  });

  it('handles multi-member streams (as eStargz and concatenated gzip are)', async () => {
    const members = [sampleData(3_000_000), Buffer.from('small member'), sampleData(2_500_000)];
    const gz = Buffer.concat(members.map((m) => gzipSync(m)));
    const plain = Buffer.concat(members);
    const { builder, out } = await build(gz, 512 * 1024);
    assert.ok(out.equals(plain));
    assert.ok(out.equals(gunzipSync(gz)));
    randomReads(gz, plain, builder, 100);
  });

  it('reports corrupt and truncated data as errors', async () => {
    const gz = gzipSync(sampleData(1_000_000));
    const corrupt = Buffer.from(gz);
    for (let i = 100; i < 400; i++) corrupt[i] = 0xff;
    await assert.rejects(build(corrupt, 1 << 20), { code: 'BAD_TAR' });
    await assert.rejects(build(gz.subarray(0, gz.length - 100), 1 << 20), /gzip stream ends early/);
  });

  it('inflates on a worker thread too: the same bytes, the event loop free meanwhile, errors typed', async () => {
    const plain = sampleData(16 * 1024 * 1024);
    const gz = gzipSync(plain, { level: 6 });
    const { builder } = await build(gz, 1024 * 1024);
    for (let i = 0; i < 40; i++) {
      const offset = Math.floor(Math.random() * plain.length);
      const length = Math.min(1 + Math.floor(Math.random() * 300_000), plain.length - offset);
      const plan = planGzipRead(builder.checkpoints, gz.length, offset, length);
      const bytes = await extractGzipRangeAsync(plan.checkpoint, plan.checkpoint.window!, gz.subarray(plan.start, plan.end), offset, length);
      assert.ok(bytes.equals(plain.subarray(offset, offset + length)), `read ${offset}+${length}`);
    }
    // All 16 MiB from the start: the loop turns while it inflates (a call on this thread would return done).
    let turns = 0;
    let settled = false;
    const whole = extractGzipRangeAsync(builder.checkpoints[0]!, Buffer.alloc(0), gz.subarray(10), 0, plain.length).finally(() => (settled = true));
    while (!settled) {
      await new Promise((r) => setImmediate(r));
      turns++;
    }
    assert.ok((await whole).equals(plain));
    assert.ok(turns > 1, `${turns} turns of the event loop while 16 MiB inflated`);
    const corrupt = Buffer.from(gz.subarray(10, 4000));
    corrupt.fill(0xff, 100, 600);
    await assert.rejects(extractGzipRangeAsync(builder.checkpoints[0]!, Buffer.alloc(0), corrupt, 0, 100_000), (err: unknown) => err instanceof KrgoError && err.code === 'BAD_TAR');
  });
});
