import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { startFaultProxy, type FaultProxy, type SeenRequest } from '../support/fault-proxy.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { busyboxImage } from '../support/fixtures.js';
import { diffTrees, snapshotTree } from '../support/tree-snapshot.js';
import { krgo, KRGO_COMMAND } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

describe('pull survives a faulty registry and refuses corrupt data', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let reference: string;
  let bigLayer: { digest: string; size: number };

  const isBigBlob = (r: SeenRequest) => r.method === 'GET' && r.path.endsWith(`/blobs/${bigLayer.digest}`);
  const isManifest = (r: SeenRequest) => r.path.includes('/manifests/');
  const pullThroughProxy = (name: string, extra: string[] = []) =>
    krgo(['pull', `${proxy.host}/busybox:latest`, '-r', join(work.path, name), '--cache-dir', join(work.path, `cache-${name}`), ...extra]);

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('faults');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('bb', busyboxImage());
    await layout.finish();
    reference = `${registry.host}/busybox:latest`;
    await skopeoPush(join(work.path, 'layout'), 'bb', reference, 'v2s2');
    const res = await fetch(`http://${reference.replace('/busybox:latest', '/v2/busybox/manifests/latest')}`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    const manifest = (await res.json()) as { layers: { digest: string; size: number }[] };
    bigLayer = manifest.layers.reduce((a, b) => (a.size > b.size ? a : b));
    assert.ok(bigLayer.size > 500_000, 'the busybox layer is big enough to cut in the middle');
    proxy = await startFaultProxy(registry.host);
    const clean = await krgo(['pull', reference, '-r', join(work.path, 'reference'), '--cache-dir', join(work.path, 'cache-ref'), '-q']);
    assert.equal(clean.code, 0, clean.stderr);
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await work?.remove();
  });

  const reset = () => {
    proxy.seen.length = 0;
    proxy.bytesSent = 0;
    proxy.setFaults(() => undefined);
  };

  async function assertSameAsReference(name: string): Promise<void> {
    assert.deepEqual(diffTrees(await snapshotTree(join(work.path, 'reference')), await snapshotTree(join(work.path, name))), []);
  }

  it('a connection dropped mid-blob resumes from the last good byte with an exact result', async () => {
    reset();
    let cuts = 0;
    proxy.setFaults((r) => (isBigBlob(r) && cuts++ < 2 ? { kind: 'drop-after', bytes: Math.floor(bigLayer.size / 3) * cuts } : undefined));
    const res = await pullThroughProxy('dropped');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /connection lost at byte \d+ of sha256:/);
    const blobRequests = proxy.seen.filter(isBigBlob);
    assert.equal(blobRequests.length, 3);
    assert.equal(blobRequests[0]!.range, undefined);
    assert.match(blobRequests[1]!.range ?? '', /^bytes=[1-9]\d*-$/, 'the second request resumes with a Range');
    assert.ok(proxy.bytesSent < bigLayer.size * 1.2, `resuming must not download again from the start (${proxy.bytesSent} bytes for ${bigLayer.size})`);
    await assertSameAsReference('dropped');
  });

  it('a registry answering a Range request with 200 is handled (the leading bytes are skipped)', async () => {
    reset();
    let cut = false;
    proxy.setFaults((r) => {
      if (!isBigBlob(r)) return undefined;
      if (!cut) {
        cut = true;
        return { kind: 'drop-after', bytes: Math.floor(bigLayer.size / 2) };
      }
      return { kind: 'ignore-range' };
    });
    const res = await pullThroughProxy('range200');
    assert.equal(res.code, 0, res.stderr);
    assert.ok(proxy.seen.filter(isBigBlob)[1]?.range, 'krgo asked for a range');
    await assertSameAsReference('range200');
  });

  it('5xx and 429 answers are retried, honouring Retry-After', async () => {
    reset();
    let manifestFaults = 0;
    let blobFaults = 0;
    proxy.setFaults((r) => {
      if (isManifest(r) && manifestFaults++ < 1) return { kind: 'status', status: 429, headers: { 'retry-after': '1' } };
      if (isBigBlob(r) && blobFaults++ < 2) return { kind: 'status', status: blobFaults === 1 ? 503 : 500 };
      return undefined;
    });
    const started = Date.now();
    const res = await pullThroughProxy('retried');
    assert.equal(res.code, 0, res.stderr);
    assert.ok(Date.now() - started >= 1000, 'the Retry-After second was waited');
    assert.match(res.stderr, /answered 429, retrying in 1000 ms/);
    assert.match(res.stderr, /answered 503, retrying/);
    await assertSameAsReference('retried');
  });

  it('a corrupted byte fails the pull with a digest error naming the blob, and leaves no rootfs', async () => {
    reset();
    proxy.setFaults((r) => (isBigBlob(r) ? { kind: 'corrupt', offset: 1000 } : undefined));
    const res = await pullThroughProxy('corrupt');
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, new RegExp(`blob ${bigLayer.digest} failed verification`));
    await assert.rejects(stat(join(work.path, 'corrupt')));
    await assert.rejects(stat(join(work.path, '.corrupt.krgo', 'rootfs.partial')), 'the partial tree is removed');
    // The corrupt download is not kept for a resume: the next run fetches it afresh and succeeds.
    reset();
    const again = await pullThroughProxy('corrupt');
    assert.equal(again.code, 0, again.stderr);
    await assertSameAsReference('corrupt');
  });

  it('corruption the decompressor cannot see is still caught by the digest', async () => {
    reset();
    // The last bytes of a gzip stream are its CRC and length: flipping one inside the deflate
    // data may go unnoticed by a lenient reader, but never by the digest check.
    proxy.setFaults((r) => (isBigBlob(r) ? { kind: 'corrupt', offset: bigLayer.size - 1 } : undefined));
    const res = await pullThroughProxy('corrupt-tail');
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, new RegExp(`blob ${bigLayer.digest} failed verification`));
    await assert.rejects(stat(join(work.path, 'corrupt-tail')));
  });

  it('a corrupt blob left complete in the cache is rehashed, dropped and fetched again', async () => {
    reset();
    const cache = join(work.path, 'cache-kept');
    const first = await krgo(['pull', `${proxy.host}/busybox:latest`, '-r', join(work.path, 'kept-1'), '--cache-dir', cache, '-q', '--keep-blobs']);
    assert.equal(first.code, 0, first.stderr);
    const kept = join(cache, 'blobs', 'sha256', bigLayer.digest.slice(7));
    const bytes = await readFile(kept);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
    await writeFile(kept, bytes);
    reset();
    const again = await krgo(['pull', `${proxy.host}/busybox:latest`, '-r', join(work.path, 'kept-2'), '--cache-dir', cache]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`cached copy of ${bigLayer.digest} is corrupt; downloading it again`));
    assert.equal(proxy.seen.filter(isBigBlob).length, 1, 'fetched again');
    await assertSameAsReference('kept-2');
  });

  it('a killed pull leaves no rootfs, and running it again resumes the download', async () => {
    reset();
    proxy.setFaults((r) => (isBigBlob(r) ? { kind: 'stall-after', bytes: Math.floor(bigLayer.size / 2) } : undefined));
    const rootfs = join(work.path, 'killed');
    const cache = join(work.path, 'cache-killed');
    const child = spawn(KRGO_COMMAND, ['pull', `${proxy.host}/busybox:latest`, '-r', rootfs, '--cache-dir', cache, '-q'], { stdio: 'ignore' });
    const deadline = Date.now() + 20_000;
    while (proxy.bytesSent < Math.floor(bigLayer.size / 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await assert.rejects(stat(rootfs), 'no rootfs after a killed pull');
    const partials = (await readdir(join(cache, 'blobs', 'sha256'))).filter((f) => f.endsWith('.partial'));
    assert.equal(partials.length, 1);
    reset();
    const res = await krgo(['pull', `${proxy.host}/busybox:latest`, '-r', rootfs, '--cache-dir', cache, '-q']);
    assert.equal(res.code, 0, res.stderr);
    const resumed = proxy.seen.filter(isBigBlob);
    assert.equal(resumed.length, 1);
    assert.match(resumed[0]!.range ?? '', /^bytes=[1-9]\d*-$/);
    await assertSameAsReference('killed');
  });
});
