/** What the benchmarks share: timing, foreground mounts, lazy runs, access profiles. */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { WanEmulator } from '../test/support/wan-emulator.js';
import { runOk } from '../test/support/run.js';
import { KRGO_COMMAND } from '../test/support/krgo-cli.js';

export const log = (line: string) => process.stderr.write(`# ${line}\n`);
export const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
export const now = () => performance.now() / 1000;

/** Wall time and peak RSS (GNU time) of a command, after a sync so no tool pays for another's writeback. */
export async function timed(cmd: string, args: string[]): Promise<{ seconds: number; rssMb: number }> {
  await runOk('sync', []);
  const t = now();
  const res = await runOk('/usr/bin/time', ['-f', 'KRGO_RSS_KB=%M', cmd, ...args]);
  return { seconds: now() - t, rssMb: Number(/KRGO_RSS_KB=(\d+)/.exec(res.stderr)?.[1] ?? NaN) / 1024 };
}

/** Runs `krgo mount` in the foreground; resolves when it prints its ready line. */
export async function mountForeground(image: string, mountpoint: string, cacheDir: string, extra: string[] = []) {
  await mkdir(mountpoint, { recursive: true });
  const t = now();
  const child = spawn(KRGO_COMMAND, ['mount', image, mountpoint, '--cache-dir', cacheDir, '-q', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready:')) resolve();
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`krgo mount exited ${code}: ${out}`)));
  });
  const readySeconds = now() - t;
  return {
    readySeconds,
    async peakRssMb(): Promise<number> {
      const s = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? NaN) / 1024;
    },
    async stop(): Promise<void> {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Runs `argv` in a chroot of `root` with the host's /dev bound in a private mount namespace (as
 * `krgo run` and container engines do: a FUSE mount is nodev, and perl, for one, opens /dev/null).
 */
export function runInRoot(root: string, argv: string[], input?: string) {
  const quoted = [root, ...argv].map((a) => `'${a.replace(/'/g, `'\\''`)}'`);
  const script = `mount --rbind /dev ${quoted[0]}/dev && exec chroot ${quoted.join(' ')}`;
  return runOk('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], input === undefined ? {} : { input });
}

/**
 * Pushes an image's indexes with an access profile beside them: what `argv` read when run once in
 * a chroot of a mount of the image (on loopback: the recording's timing does not matter).
 */
export async function pushWithProfile(image: string, workDir: string, name: string, argv: string[], input?: string): Promise<void> {
  const profile = join(workDir, `${name}.profile`);
  const cacheDir = join(workDir, `cache-${name}-recorder`);
  const recording = await mountForeground(image, join(workDir, `record-${name}`), cacheDir, ['--record-profile', profile]);
  await runInRoot(join(workDir, `record-${name}`), argv, input);
  await recording.stop();
  await runOk(KRGO_COMMAND, ['index', '--push', '--profile', profile, image, '--cache-dir', cacheDir]);
}

/** A mount with an empty cache, then `argv` in a chroot of it: seconds to ready and to done, bytes over the link. */
export async function lazyRun(wan: WanEmulator, image: string, dir: string, argv: string[], input?: string): Promise<{ ready: number; done: number; bytes: number }> {
  wan.reset();
  const t = now();
  const mount = await mountForeground(image, join(dir, 'mnt'), join(dir, 'cache'));
  const ready = mount.readySeconds;
  await runInRoot(join(dir, 'mnt'), argv, input);
  const done = now() - t;
  const bytes = wan.bytesToClient;
  await mount.stop();
  await rm(dir, { recursive: true, force: true });
  return { ready, done, bytes };
}

/** Detaches what a failed run left mounted under `dir` (before the directory is removed). */
export async function detachMountsUnder(dir: string): Promise<void> {
  const { readFileSync } = await import('node:fs');
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const target = line.split(' ')[1];
    if (target?.startsWith(dir)) await runOk('fusermount', ['-uz', target]).catch(() => undefined);
  }
}
