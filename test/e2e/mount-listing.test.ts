import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { startBusyboxRegistry, type BusyboxSetup } from '../support/busybox-registry.js';
import { krgo } from '../support/krgo-cli.js';
import { isMounted } from '../../src/mount/mount-table.js';
import { readStatus } from '../../src/mount/mount-status.js';

/** Mounts are found without --cache-dir: listed, shown and unmounted by their mountpoint alone. */
describe('krgo mounts: every krgo mount, whatever its cache dir', () => {
  let setup: BusyboxSetup;
  let image = '';

  before(async () => {
    setup = await startBusyboxRegistry('listing');
    image = setup.image;
  });

  after(async () => {
    await setup?.stop();
  });

  it('lists, shows and unmounts a mount made with its own cache dir, by mountpoint alone', async () => {
    const mp = join(setup.work, 'mnt');
    await mkdir(mp, { recursive: true });
    const cache = join(setup.work, 'a-cache-of-its-own');
    const mounted = await krgo(['mount', '-d', image, mp, '--cache-dir', cache]);
    assert.equal(mounted.code, 0, mounted.stderr);
    for (const args of [['mounts'], ['mount']]) {
      const listed = await krgo(args);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^MOUNTPOINT +IMAGE +STATE +FETCHED$/m);
      assert.match(listed.stdout, new RegExp(`^${mp} +${image.replace(/[.]/g, '\\.')} +up \\(pid \\d+\\)`, 'm'));
    }
    const json = JSON.parse((await krgo(['mounts', '--json'])).stdout) as { mountpoint: string; state: string }[];
    assert.deepEqual(json.filter((m) => m.mountpoint === mp).map((m) => m.state), ['up']);
    const status = await krgo(['status', mp]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`on ${mp}: up`));
    const unmounted = await krgo(['umount', mp]);
    assert.equal(unmounted.code, 0, unmounted.stderr);
    assert.equal(isMounted(mp), false);
    assert.doesNotMatch((await krgo(['mounts'])).stdout, new RegExp(mp));
  });

  it('a mount whose process was killed goes with it (auto_unmount); its record is cleared by umount', async () => {
    const mp = join(setup.work, 'killed');
    await mkdir(mp, { recursive: true });
    const cache = join(setup.work, 'cache-killed');
    assert.equal((await krgo(['mount', '-d', image, mp, '--cache-dir', cache])).code, 0);
    const status = await readStatus(cache, mp);
    process.kill(status!.pid, 'SIGKILL');
    for (let i = 0; i < 100 && isMounted(mp); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(isMounted(mp), false, 'libfuse unmounts it when its process dies');
    assert.doesNotMatch((await krgo(['mounts'])).stdout, new RegExp(mp), 'not listed');
    const cleared = await krgo(['umount', mp]);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /cleared the stale record/);
    assert.equal(await readStatus(cache, mp), undefined);
  });
});
