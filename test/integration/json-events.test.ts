import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startBusyboxRegistry, type BusyboxSetup } from '../support/busybox-registry.js';
import { krgo } from '../support/krgo-cli.js';

describe('krgo pull --json: one event per line, for scripts', () => {
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
    const done = events[events.length - 1]!;
    assert.equal(done.event, 'done');
    assert.equal(done.manifestDigest, resolved.manifestDigest);
    assert.equal(done.rootfs, rootfs);
    assert.ok((done.entries ?? 0) > 5);
    assert.ok(events.indexOf(resolved) < events.findIndex((e) => e.event === 'applied'), 'in the order they happen');
  });
});
