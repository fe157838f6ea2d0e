import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chmod, readdir } from 'node:fs/promises';
import { tempDir } from '../support/temp.js';
import { run } from '../support/run.js';
import { KRGO_COMMAND } from '../support/krgo-cli.js';

/**
 * Not root: commands that write an image's tree refuse up front, in one line that names what is
 * missing, and leave nothing behind (before, pull warned, then died with EPERM naming no file,
 * leaving 82 MB).
 */
describe('without root', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    work = await tempDir('unprivileged');
    await chmod(work.path, 0o777);
  });
  after(async () => work?.remove());

  const asNobody = (args: string[]) =>
    run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', KRGO_COMMAND, ...args], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: work.path },
      cwd: work.path,
    });

  for (const command of ['pull', 'materialize']) {
    it(`krgo ${command} refuses (exit 12) before fetching or writing anything`, async () => {
      const rootfs = join(work.path, `rootfs-${command}`);
      const res = await asNobody([command, '127.0.0.1:9/never/fetched:1', '-r', rootfs]);
      assert.equal(res.code, 12, res.stderr);
      assert.match(res.stderr, new RegExp(`^krgo: krgo ${command} needs root: .*nothing was written\\n$`));
      assert.deepEqual(await readdir(work.path), [], 'no rootfs, no cache, nothing');
    });
  }

  it('krgo mount says what FUSE needs when /dev/fuse is not usable (no stack trace)', async () => {
    const mp = join(work.path, 'mnt');
    const usable = (await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', 'test -r /dev/fuse -a -w /dev/fuse'])).code === 0;
    const res = await asNobody(['mount', '127.0.0.1:9/never/fetched:1', mp]);
    if (usable) {
      // A user FUSE mount is allowed here: the mount goes on, and fails only at the registry.
      assert.equal(res.code, 5, res.stderr);
    } else {
      assert.equal(res.code, 12, res.stderr);
      assert.match(res.stderr, /^krgo: krgo mount needs FUSE: no read-write access to \/dev\/fuse \(run as root, or as a member of the group that owns it\)\n$/);
    }
    assert.doesNotMatch(res.stderr, /\n\s+at /);
  });
});
