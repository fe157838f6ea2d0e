import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { lstat, mkdir, readFile } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { skopeoPush } from '../support/oci-layout.js';
import { debianImageLayout, DEBIAN_TAG } from '../support/debian-image.js';
import { unmount } from '../support/mounts.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { run } from '../support/run.js';
import { isMounted, mountEntries } from '../../src/mount/mount-table.js';
import { readStatus } from '../../src/mount/mount-status.js';

/** krgo mount -w: overlayfs over the lazy tree; a container engine writes; the change outlives the mount. */
describe('a writable lazy mount', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let image = '';
  const cache = () => join(work.path, 'cache');

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('writable');
    image = `${registry.host}/library/debian:bookworm`;
    await skopeoPush(await debianImageLayout(), DEBIAN_TAG, image, 'v2s2');
  });

  after(async () => {
    await unmount(join(work.path, 'mnt'), cache()).catch(() => undefined);
    await registry?.stop();
    await work?.remove();
  });

  const mountWritable = async (mp: string) => {
    const res = await krgo(['mount', '-d', '-w', image, mp, '--cache-dir', cache()]);
    assert.equal(res.code, 0, res.stderr);
  };

  it('systemd-nspawn writes in it; the upper directory holds the change; unmount, kill -9 and remount keep it', async () => {
    const mp = join(work.path, 'mnt');
    await mkdir(mp, { recursive: true });
    await mountWritable(mp);
    const nspawn = await run('systemd-nspawn', ['--pipe', '--register=no', '--keep-unit', '-q', '-D', mp, '/bin/sh', '-c', 'echo hello > /root/new && rm /etc/debian_version && echo "extra:x:1234:1234::/:/bin/false" >> /etc/passwd && echo written']);
    assert.equal(nspawn.stdout.trim(), 'written', nspawn.stderr);
    const check = async () => {
      assert.equal(await readFile(join(mp, 'root/new'), 'utf8'), 'hello\n');
      await assert.rejects(lstat(join(mp, 'etc/debian_version')), 'deleted');
      assert.match(await readFile(join(mp, 'etc/passwd'), 'utf8'), /^root:x:0:0:.*\nextra:x:1234/s);
    };
    await check();
    const status = (await readStatus(cache(), mp))!;
    const upper = status.writable!.upper;
    assert.equal(await readFile(join(upper, 'root/new'), 'utf8'), 'hello\n');
    const whiteout = await lstat(join(upper, 'etc/debian_version'));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'a deletion is an overlay whiteout (0/0) in the upper directory');
    const shown = await krgo(['status', mp]);
    assert.match(shown.stdout, /writable: \d+ paths changed, .* written, in /);
    const listed = await krgo(['mounts']);
    assert.equal(listed.stdout.split('\n').filter((l) => l.includes(work.path)).length, 1, `one mount listed (its lower tree is not): ${listed.stdout}`);

    assert.equal((await krgo(['umount', mp])).code, 0);
    assert.equal(isMounted(mp), false);
    assert.equal(mountEntries().some((e) => e.mountpoint.startsWith(cache())), false, 'no lower tree left mounted');
    await mountWritable(mp);
    await check();

    const pid = (await readStatus(cache(), mp))!.pid;
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    const cleared = await krgo(['umount', mp]);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal(isMounted(mp), false);
    assert.equal(mountEntries().some((e) => e.mountpoint.startsWith(cache())), false, 'the dead lower tree went too');
    await mountWritable(mp);
    await check();
    assert.equal((await krgo(['umount', mp])).code, 0);
  });
});
