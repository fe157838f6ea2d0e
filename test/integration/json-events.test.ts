import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { isMounted } from '../../src/mount/mount-table.js';
import { startBusyboxRegistry, type BusyboxSetup } from '../support/busybox-registry.js';
import { krgo } from '../support/krgo-cli.js';
import { runOk } from '../support/run.js';

describe('--json: one event per line, for scripts (pull, push, mount)', () => {
  let setup: BusyboxSetup;

  before(async () => {
    setup = await startBusyboxRegistry('json-events');
  });

  after(async () => {
    await setup?.stop();
  });

  it('every line is JSON; resolved, each layer downloaded and applied, done with the manifest digest', async () => {
    const rootfs = join(setup.work, 'rootfs');
    const res = await krgo(['pull', setup.image, '-r', rootfs, '--cache-dir', join(setup.work, 'cache'), '--json']);
    assert.equal(res.code, 0, res.stderr);
    const events = res.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: string; layer?: number; manifestDigest?: string; layers?: unknown; rootfs?: string; entries?: number });
    const resolved = events.find((e) => e.event === 'resolved')!;
    assert.match(resolved.manifestDigest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal((resolved.layers as unknown[]).length, 2);
    for (const kind of ['downloaded', 'apply', 'applied']) {
      assert.deepEqual(events.filter((e) => e.event === kind).map((e) => e.layer).sort(), [0, 1], `${kind} for each layer`);
    }
    assert.ok(events.filter((e) => e.event === 'downloaded').every((e) => (e as { cached?: boolean }).cached === false), 'nothing was in the cache');
    const done = events[events.length - 1]!;
    assert.equal(done.event, 'done');
    assert.equal(done.manifestDigest, resolved.manifestDigest);
    assert.equal(done.rootfs, rootfs);
    assert.ok((done.entries ?? 0) > 5);
    assert.ok(events.indexOf(resolved) < events.findIndex((e) => e.event === 'applied'), 'in the order they happen');
  });

  it('krgo push --json: each layer and how it went, done with the digest the registry serves', async () => {
    const rootfs = join(setup.work, 'rootfs-git');
    const pulled = await krgo(['pull', setup.image, '-g', '-r', rootfs, '--cache-dir', join(setup.work, 'cache-git'), '-q']);
    assert.equal(pulled.code, 0, pulled.stderr);
    const target = `${setup.registry.host}/copied:json`;
    const res = await krgo(['push', target, '-r', rootfs, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const events = res.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: string; layer?: number; outcome?: string; manifestDigest?: string });
    assert.deepEqual(events.filter((e) => e.event === 'layer-done').map((e) => e.layer).sort(), [0, 1]);
    assert.ok(events.filter((e) => e.event === 'layer-done').every((e) => ['present', 'mounted', 'copied', 'uploaded'].includes(e.outcome!)));
    const done = events[events.length - 1]!;
    assert.equal(done.event, 'done');
    const served = await runOk('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${target}`]);
    assert.equal(done.manifestDigest, served.stdout.trim());
  });

  it('krgo mount -d --json: indexed per layer, ready with the mountpoint and the digest the registry serves; a second pull of cached layers says cached', async () => {
    const mountpoint = join(setup.work, 'mnt-json');
    await mkdir(mountpoint, { recursive: true });
    const cache = join(setup.work, 'cache-mount');
    const res = await krgo(['mount', '-d', '--json', setup.image, mountpoint, '--cache-dir', cache]);
    try {
      assert.equal(res.code, 0, res.stderr);
      const events = res.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: string; layer?: number; source?: string; mountpoint?: string; manifestDigest?: string; pid?: number });
      assert.deepEqual(events.filter((e) => e.event === 'indexed').map((e) => e.layer).sort(), [0, 1]);
      assert.ok(events.filter((e) => e.event === 'indexed').every((e) => e.source === 'built'), 'an empty cache, no artifact: built');
      for (const layer of [0, 1]) {
        const started = events.findIndex((e) => e.event === 'indexing' && e.layer === layer);
        assert.ok(started >= 0 && started < events.findIndex((e) => e.event === 'indexed' && e.layer === layer), `layer ${layer}: said before its pass, not only after`);
      }
      const ready = events[events.length - 1]!;
      assert.equal(ready.event, 'ready');
      assert.equal(ready.mountpoint, mountpoint);
      assert.ok(isMounted(mountpoint));
      const served = await runOk('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${setup.image}`]);
      assert.equal(ready.manifestDigest, served.stdout.trim());
    } finally {
      await krgo(['umount', mountpoint]);
    }
    const kept = join(setup.work, 'cache-kept');
    for (const rootfs of ['kept-1', 'kept-2']) {
      const pulled = await krgo(['pull', setup.image, '-r', join(setup.work, rootfs), '--cache-dir', kept, '--keep-blobs', '--json']);
      assert.equal(pulled.code, 0, pulled.stderr);
      const downloaded = pulled.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; cached?: boolean }).filter((e) => e.event === 'downloaded');
      assert.deepEqual(downloaded.map((e) => e.cached), rootfs === 'kept-1' ? [false, false] : [true, true]);
    }
  });
});
