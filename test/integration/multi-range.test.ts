import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { startFaultProxy, type FaultProxy, type SeenRequest } from '../support/fault-proxy.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { busyboxImage } from '../support/fixtures.js';
import { tempDir } from '../support/temp.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseReference } from '../../src/registry/reference.js';
import { RegistryRangeSource } from '../../src/blob/range-source.js';
import { parseDigest, type Digest } from '../../src/digest.js';

/** Scattered ranges of a blob, in the order a replay would want them (not sorted). */
function scattered(size: number, count: number): { start: number; end: number }[] {
  return Array.from({ length: count }, (_, k) => {
    const start = Math.floor(((k * 7919) % count) * (size / count));
    return { start, end: Math.min(size, start + 1000 + k * 37) };
  });
}

describe('background reads of a blob share multi-range requests', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let layer: { digest: Digest; size: number };
  let blob: Buffer;
  let config: { digest: Digest; size: number };
  let configBytes: Buffer;
  let client: RegistryClient;

  const isLayer = (r: SeenRequest) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('multi-range');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('bb', busyboxImage());
    await layout.finish();
    await skopeoPush(join(work.path, 'layout'), 'bb', `${registry.host}/busybox:latest`, 'v2s2');
    const res = await fetch(`http://${registry.host}/v2/busybox/manifests/latest`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    const manifest = (await res.json()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
    config = { digest: parseDigest(manifest.config.digest), size: manifest.config.size };
    configBytes = Buffer.from(await (await fetch(`http://${registry.host}/v2/busybox/blobs/${config.digest}`)).arrayBuffer());
    const biggest = manifest.layers.reduce((a, b) => (a.size > b.size ? a : b));
    layer = { digest: parseDigest(biggest.digest), size: biggest.size };
    blob = Buffer.from(await (await fetch(`http://${registry.host}/v2/busybox/blobs/${layer.digest}`)).arrayBuffer());
    proxy = await startFaultProxy(registry.host);
    client = new RegistryClient(parseReference(`${proxy.host}/busybox:latest`), { retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } });
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await registry?.stop();
    await work?.remove();
  });

  const readAll = (source: RegistryRangeSource, ranges: { start: number; end: number }[], background: boolean) =>
    Promise.all(ranges.map((r) => source.read(layer.digest, r.start, r.end, { background })));

  const assertExact = (got: Buffer[], ranges: { start: number; end: number }[]) =>
    got.forEach((b, k) => assert.ok(b.equals(blob.subarray(ranges[k]!.start, ranges[k]!.end)), `range ${ranges[k]!.start}-${ranges[k]!.end}`));

  it('the real registry answers 40 background reads issued together in one request, each exact', async () => {
    proxy.seen.length = 0;
    proxy.setFaults(() => undefined);
    const source = new RegistryRangeSource(client);
    const ranges = scattered(layer.size, 40);
    const progress: number[] = [];
    const got = await Promise.all(ranges.map((r, k) => source.read(layer.digest, r.start, r.end, { background: true, ...(k === 5 ? { onProgress: (_d: Buffer, filled: number) => progress.push(filled) } : {}) })));
    assertExact(got, ranges);
    const requests = proxy.seen.filter(isLayer);
    assert.equal(requests.length, 1, 'one request');
    assert.equal(requests[0]!.range!.split(',').length, 40);
    assert.equal(progress[progress.length - 1], ranges[5]!.end - ranges[5]!.start, 'progress told up to the whole range');
    assert.equal(source.batches, true);
    assert.equal(source.fetched.get(layer.digest), ranges.reduce((n, r) => n + r.end - r.start, 0));
  });

  it('a reader that refuses its bytes fails alone: the other ranges of its request arrive exact', async () => {
    proxy.seen.length = 0;
    proxy.setFaults(() => undefined);
    const source = new RegistryRangeSource(client);
    const ranges = scattered(layer.size, 10);
    const results = await Promise.allSettled(
      ranges.map((r, k) =>
        source.read(layer.digest, r.start, r.end, {
          background: true,
          ...(k === 3
            ? {
                onProgress: () => {
                  throw new Error('bad bytes');
                },
              }
            : {}),
        }),
      ),
    );
    assert.equal(results[3]!.status, 'rejected');
    const others = results.flatMap((r, k) => (k === 3 ? [] : [{ r, k }]));
    others.forEach(({ r, k }) => assert.ok(r.status === 'fulfilled' && r.value.equals(blob.subarray(ranges[k]!.start, ranges[k]!.end)), `range ${k}`));
    assert.equal(proxy.seen.filter(isLayer).length, 1, 'nothing fetched again');
  });

  it('reads someone waits on go out at once, one request each', async () => {
    proxy.seen.length = 0;
    proxy.setFaults(() => undefined);
    const source = new RegistryRangeSource(client);
    const ranges = scattered(layer.size, 5);
    assertExact(await readAll(source, ranges, false), ranges);
    assert.equal(proxy.seen.filter(isLayer).length, 5);
    assert.ok(proxy.seen.filter(isLayer).every((r) => !r.range!.includes(',')));
  });

  it('ranges planned ahead go out at once; a read within one takes its bytes as they come, a read outside asks again', async () => {
    proxy.seen.length = 0;
    const source = new RegistryRangeSource(client);
    const planned = scattered(layer.size, 12).map((r) => ({ start: r.start, end: Math.min(layer.size, r.start + 20_000) }));
    source.prefetch(planned.map((r) => ({ digest: layer.digest, ...r })));
    assert.equal(source.requests, 1, 'sent without waiting for the event loop: one multi-range request');
    // Reads inside planned ranges (one exactly, one in the middle of another), as a replay's runs make them.
    const inside = [planned[3]!, { start: planned[7]!.start + 100, end: planned[7]!.end - 100 }];
    let progressed = 0;
    const got = await Promise.all(inside.map((r) => source.read(layer.digest, r.start, r.end, { background: true, onProgress: (data, filled) => (progressed = Math.max(progressed, filled)) && assert.ok(filled <= data.length) })));
    assertExact(got, inside);
    assert.ok(progressed > 0, 'progress told to the reader');
    assert.equal(proxy.seen.filter(isLayer).length, 1, 'no request of their own');
    // A planned range serves one read; a read that no planned range holds is asked for.
    const outside = [planned[3]!, { start: planned[5]!.start, end: planned[5]!.end + 10 }].filter((r) => r.end <= layer.size);
    assertExact(await readAll(source, outside, false), outside);
    assert.equal(proxy.seen.filter(isLayer).length, 1 + outside.length);
  });

  it('ranges planned ahead are asked for in the order given, on one connection, a stretch of them at a time', async () => {
    proxy.seen.length = 0;
    proxy.setFaults(() => undefined);
    const source = new RegistryRangeSource(client);
    // Overlapping ranges never share a request: each of these is one, and their order is the plan's.
    const whole = { digest: layer.digest, start: 0, end: layer.size };
    const head = { digest: config.digest, start: 0, end: config.size };
    const plan = [whole, head, whole, head];
    source.prefetch(plan);
    assert.equal(source.requests, plan.length, 'all sent at once');
    const got = await Promise.all(plan.map((r) => source.read(r.digest, r.start, r.end, { background: true })));
    got.forEach((b, k) => assert.ok(b.equals(plan[k]!.digest === layer.digest ? blob : configBytes), `planned range ${k}`));
    const asked = proxy.seen.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    assert.deepEqual(
      asked.map((r) => r.path.slice(r.path.lastIndexOf('/') + 1)),
      plan.map((r) => r.digest),
      'in the order planned',
    );
    assert.equal(new Set(asked.map((r) => r.connection)).size, 1, 'on one connection');
  });

  it('planned ranges whose pipelined connection breaks are read again, exact', async () => {
    proxy.seen.length = 0;
    // The first answer on the pipelined connection is cut short: it and those behind it fail there.
    proxy.setFaults((r, i) => (i === 0 && isLayer(r) ? { kind: 'drop-after', bytes: 1000 } : undefined));
    const source = new RegistryRangeSource(client);
    const whole = { digest: layer.digest, start: 0, end: layer.size };
    const head = { digest: config.digest, start: 0, end: config.size };
    const plan = [whole, head, whole, head];
    source.prefetch(plan);
    const got = await Promise.all(plan.map((r) => source.read(r.digest, r.start, r.end, { background: true })));
    got.forEach((b, k) => assert.ok(b.equals(plan[k]!.digest === layer.digest ? blob : configBytes), `planned range ${k}`));
    const first = proxy.seen[0]!.connection;
    assert.ok(proxy.seen.some((r) => r.connection !== first && isLayer(r)), 'the cut range asked for again on another connection');
    proxy.setFaults(() => undefined);
  });

  for (const [what, fault] of [
    ['ignores Range (200, the whole blob)', { kind: 'ignore-range' }],
    ['answers only the first range', { kind: 'first-range' }],
    ['refuses multi-range requests with 400 (as gcr.io did)', { kind: 'status', status: 400 }],
    ['answers in parts this reader cannot frame', { kind: 'corrupt', offset: 0 }],
  ] as const) {
    it(`a registry that ${what} is then asked one range at a time, with exact bytes`, async () => {
      proxy.seen.length = 0;
      proxy.setFaults((r) => (isLayer(r) && r.range?.includes(',') ? fault : undefined));
      const source = new RegistryRangeSource(client);
      const ranges = scattered(layer.size, 12);
      assertExact(await readAll(source, ranges, true), ranges);
      assert.equal(source.batches, false, 'no longer batching');
      const multi = proxy.seen.filter((r) => isLayer(r) && r.range?.includes(','));
      assert.equal(multi.length, 1, 'one multi-range request only');
      // Later background reads go one range each, and nothing was read twice beyond the failed answer.
      const more = scattered(layer.size, 3).map((r) => ({ start: r.start + 10, end: r.end + 10 }));
      assertExact(await readAll(source, more, true), more);
      assert.equal(proxy.seen.filter((r) => isLayer(r) && r.range?.includes(',')).length, 1);
    });
  }
});
