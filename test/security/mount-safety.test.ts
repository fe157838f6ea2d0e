import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { mountDaemon, unmount } from '../support/mounts.js';
import { startBusyboxRegistry, type BusyboxSetup } from '../support/busybox-registry.js';
import { krgo, KRGO_BIN, KRGO_COMMAND } from '../support/krgo-cli.js';
import { startWanEmulator } from '../support/wan-emulator.js';
import { run, runOk } from '../support/run.js';
import { isMounted } from '../../src/mount/mount-table.js';
import { mountLogPath, readStatus, statusPath, writeStatus } from '../../src/mount/mount-status.js';

/** `krgo umount` and `krgo mount` touch only what krgo mounted, and never the programs using it. */
describe('mount safety: krgo acts only on its own mounts and processes', () => {
  let setup: BusyboxSetup;
  const cache = () => join(setup.work, 'cache');
  const cleanups: (() => Promise<unknown>)[] = [];
  let image = '';

  before(async () => {
    setup = await startBusyboxRegistry('mount-safety');
    image = setup.image;
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await setup?.stop();
  });

  it('umount of a tmpfs refuses (exit 2) and the tmpfs and its file stay', async () => {
    const mp = join(setup.work, 'tmpfs');
    await mkdir(mp, { recursive: true });
    await runOk('mount', ['-t', 'tmpfs', 'none', mp]);
    cleanups.push(() => run('umount', [mp]));
    await writeFile(join(mp, 'precious'), 'not krgo\'s');
    const res = await krgo(['umount', mp, '--cache-dir', cache()]);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /is not a krgo mount \(it is tmpfs/);
    assert.ok(isMounted(mp), 'the tmpfs is still mounted');
    assert.equal(await readFile(join(mp, 'precious'), 'utf8'), 'not krgo\'s');
    const again = await krgo(['mount', image, mp, '--cache-dir', cache()]);
    assert.equal(again.code, 8);
    assert.match(again.stderr, /already a mount point \(tmpfs\); choose another directory/);
    assert.doesNotMatch(again.stderr, /krgo umount/, 'no advice to unmount what is not krgo\'s');
  });

  it('umount of a busy mount refuses (exit 11) and the program using it goes on; --force detaches it', async () => {
    const mp = join(setup.work, 'busy');
    await mountDaemon(image, mp, cache());
    cleanups.push(() => unmount(mp, cache()));
    // A program with its working directory in the mount, as a shell in a container would be.
    // It waits on its stdin (the image's busybox has no sleep applet), then reads a file of the mount.
    const user: ChildProcess = spawn('chroot', [mp, '/bin/sh', '-c', 'cd /etc && read line && cat motd'], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanups.push(async () => user.kill('SIGKILL'));
    let output = '';
    user.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    const userExit = new Promise<number | null>((r) => user.once('exit', (code) => r(code)));
    await new Promise((r) => setTimeout(r, 500));
    const res = await krgo(['umount', mp, '--cache-dir', cache()]);
    assert.equal(res.code, 11, res.stderr);
    assert.match(res.stderr, /is in use .*krgo umount --force/);
    assert.ok(isMounted(mp), 'still mounted');
    const status = await readStatus(cache(), mp);
    assert.ok(status && (await run('kill', ['-0', String(status.pid)])).code === 0, 'the mount process still runs');
    user.stdin!.end('go on\n');
    assert.equal(await userExit, 0, 'the program using the mount was not disturbed');
    assert.equal(output, 'hello from krgo\n', 'and could still read from it');
    const again = spawn('chroot', [mp, '/bin/sh', '-c', 'cd /etc && read line'], { stdio: ['pipe', 'ignore', 'ignore'] });
    cleanups.push(async () => again.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 500));
    const forced = await krgo(['umount', '--force', mp, '--cache-dir', cache()]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(isMounted(mp), false, '--force detaches a busy mount');
    again.stdin!.end('\n');
  });

  it('a stale status file naming a PID now used by another process: that process is not signalled', async () => {
    const mp = join(setup.work, 'stale');
    await mkdir(mp, { recursive: true });
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' });
    cleanups.push(async () => bystander.kill('SIGKILL'));
    // What a mount that died long ago left: its PID has since gone to an unrelated process.
    await writeStatus(cache(), {
      pid: bystander.pid!,
      pidStartTime: 1,
      reference: image,
      manifestDigest: 'sha256:' + '0'.repeat(64),
      mountpoint: mp,
      startedAt: new Date().toISOString(),
      requests: 0,
      layers: [],
    });
    const res = await krgo(['umount', mp, '--cache-dir', cache()]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /cleared the stale record/);
    assert.equal(bystander.exitCode, null, 'the bystander runs on');
    assert.equal(bystander.signalCode, null);
    assert.equal((await run('kill', ['-0', String(bystander.pid)])).code, 0);
    await assert.rejects(readFile(statusPath(cache(), mp)), 'the stale record is gone');
  });

  it('mount -dq (and -qd) mounts once and returns; a failing -d mount exits with the real code and message', async () => {
    for (const flags of [['-dq'], ['-qd']]) {
      const mp = join(setup.work, `combined${flags[0]}`);
      await mkdir(mp, { recursive: true });
      cleanups.push(() => unmount(mp, cache()));
      const res = await krgo(['mount', ...flags, image, mp, '--cache-dir', cache()]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^ready: /);
      assert.ok(isMounted(mp));
      const ps = await runOk('ps', ['-eo', 'args']);
      const daemons = ps.stdout.split('\n').filter((l) => l.includes(`${basename(KRGO_BIN)} mount`) && l.includes(mp));
      assert.equal(daemons.length, 1, `one mount process, not a chain of them: ${daemons.join('\n')}`);
      await unmount(mp, cache());
    }
    const mp = join(setup.work, 'missing-tag');
    await mkdir(mp, { recursive: true });
    const missing = await krgo(['mount', '-d', `${setup.registry.host}/busybox:no-such-tag`, mp, '--cache-dir', cache()]);
    assert.equal(missing.code, 4, missing.stderr);
    assert.match(missing.stderr, /krgo: .*not found/i);
    assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(isMounted(mp), false);
  });

  it('an access profile naming a path through a regular file (/etc/passwd/x) is skipped, the mount works', async () => {
    const mp = join(setup.work, 'hostile-profile');
    await mkdir(mp, { recursive: true });
    cleanups.push(() => unmount(mp, cache()));
    const profile = join(setup.work, 'hostile.profile');
    await writeFile(profile, '/etc/passwd/x\n/bin/sh/../../../etc/motd\n/etc/motd\n');
    const res = await krgo(['mount', '-d', '--profile', profile, image, mp, '--cache-dir', cache()]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /2 of the 3 files of the access profile are not files in this image/);
    assert.equal(await readFile(join(mp, 'etc/motd'), 'utf8'), 'hello from krgo\n');
    const status = await readStatus(cache(), mp);
    assert.equal(status?.prefetch?.missing, 2);
    await unmount(mp, cache());
  });

  it('records and logs of mounts that died are removed by the next mount', async () => {
    const dead = join(setup.work, 'dead-mountpoint');
    await mkdir(dead, { recursive: true });
    const reaped = spawn('true');
    await new Promise((r) => reaped.once('exit', r));
    await writeStatus(cache(), {
      pid: reaped.pid!,
      reference: image,
      manifestDigest: 'sha256:' + '0'.repeat(64),
      mountpoint: dead,
      startedAt: new Date().toISOString(),
      requests: 0,
      layers: [],
    });
    await writeFile(mountLogPath(cache(), dead), 'log of a mount killed long ago\n');
    const mp = join(setup.work, 'sweeper');
    await mountDaemon(image, mp, cache());
    cleanups.push(() => unmount(mp, cache()));
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = !(await readFile(statusPath(cache(), dead)).then(() => true, () => false));
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(gone, 'the dead mount\'s status file is gone');
    await assert.rejects(readFile(mountLogPath(cache(), dead)), 'and its log');
    assert.ok(await readStatus(cache(), mp), 'the live mount\'s own record stays');
    await unmount(mp, cache());
  });

  it('Ctrl-C during mount -d cancels it: exit 130, and nothing mounts afterwards', async () => {
    // A slow link (0.5 s each way), so the background process is still resolving when Ctrl-C comes.
    const wan = await startWanEmulator(setup.registry.host, { delayMs: 500 });
    cleanups.push(() => wan.stop());
    const mp = join(setup.work, 'cancelled');
    await mkdir(mp, { recursive: true });
    const parent = spawn(KRGO_COMMAND, ['mount', '-d', `${wan.host}/busybox:latest`, mp, '--cache-dir', cache()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    parent.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => parent.once('exit', (code) => r(code)));
    await new Promise((r) => setTimeout(r, 800));
    parent.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /interrupted: the mount of .* was cancelled; run the same command again to mount it/);
    assert.equal(stderr.match(/interrupted/g)?.length, 1, stderr);
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(isMounted(mp), false, 'the background process did not mount it later');
    const ps = await runOk('ps', ['-eo', 'args']);
    assert.equal(ps.stdout.split('\n').filter((l) => l.includes(`${basename(KRGO_BIN)} mount`) && l.includes(mp)).length, 0, 'no mount process left');
  });
});
