import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { busyboxImage } from '../support/fixtures.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

/**
 * Registries that hold a client without failing: one that trickles a byte a second (every idle
 * timer restarts on each byte), one that accepts the connection and never answers. krgo gives
 * up on each in bounded time with a clear message. The time limits run at a tenth of their
 * length here (KRGO_NETWORK_TIMEOUT_SCALE), so minutes become seconds.
 */
describe('hostile registries: bounded waits', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const scaled = { KRGO_NETWORK_TIMEOUT_SCALE: '0.1' };

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('hostile-registry');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('busybox', busyboxImage());
    await layout.finish();
    await skopeoPush(join(work.path, 'layout'), 'busybox', `${registry.host}/busybox:latest`, 'v2s2');
    proxy = await startFaultProxy(registry.host);
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await work?.remove();
  });

  it('a registry trickling blob bytes at 1 byte/s: pull says so and fails (exit 5) in bounded time, leaving no rootfs', async () => {
    // The config comes through; the layers trickle (resumed downloads: each retry trickles too).
    let blobs = 0;
    proxy.setFaults((req) => (req.method === 'GET' && req.path.includes('/blobs/') && blobs++ > 0 ? { kind: 'trickle' } : undefined));
    const started = Date.now();
    const rootfs = join(work.path, 'trickle');
    const res = await krgo(['pull', `${proxy.host}/busybox:latest`, '-r', rootfs, '--cache-dir', join(work.path, 'cache-trickle')], scaled);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(res.code, 5, res.stderr);
    assert.match(res.stderr, /slower than 1024 bytes\/s/);
    assert.match(res.stderr, /resuming/, 'it said what it was doing while it waited');
    assert.doesNotMatch(res.stderr, /\n\s+at /);
    assert.ok(seconds < 60, `gave up after ${seconds.toFixed(1)} s (unscaled limits: about 10 times that)`);
    await assert.rejects(stat(rootfs));
  });

  it('a registry that never answers: pull fails (exit 5) within the retry deadline', async () => {
    proxy.setFaults((req) => (req.path.includes('/manifests/') ? { kind: 'no-answer' } : undefined));
    const started = Date.now();
    const res = await krgo(['pull', `${proxy.host}/busybox:latest`, '-r', join(work.path, 'silent'), '--cache-dir', join(work.path, 'cache-silent')], scaled);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(res.code, 5, res.stderr);
    assert.match(res.stderr, /cannot reach .*Headers Timeout|cannot reach/i);
    assert.ok(seconds < 30, `gave up after ${seconds.toFixed(1)} s`);
    proxy.setFaults(() => undefined);
  });
});
