import type { Command } from 'commander';
import { resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { isMountProcess, readStatus, removeStatus, type MountStatus } from '../mount/mount-status.js';
import { fusermountUnmount, isKrgoMount, isMounted, mountAt } from '../mount/mount-table.js';
import { unmountOverlay } from '../mount/overlay.js';
import { defaultCacheDir } from '../util/paths.js';
import { cacheDirOfMount, withdrawMount } from '../mount/mount-registry.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for the mount process to end by itself (it notices its mount is gone within a second). */
async function waitForExit(status: MountStatus, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isMountProcess(status)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .description('unmount a krgo mount (only krgo mounts); also clears a dead mount left by a killed process')
    .argument('<mountpoint>')
    .option('--cache-dir <dir>', 'the cache dir the mount was made with (found by itself for a running mount)')
    .option('-f, --force', 'detach the mount even while programs use it (lazy unmount: they then get I/O errors)')
    .addHelpText(
      'after',
      `
A mount that programs still use (an open file, a working directory, a running container) is
not unmounted: krgo says so and exits 11. Stop them, or use --force to detach it lazily.
krgo umount never touches a mount that is not krgo's (a tmpfs, a bind mount, another FUSE file
system).`,
    )
    .action(async (mountpoint: string, flags: { cacheDir?: string; force?: boolean }) => {
      const target = resolve(mountpoint);
      const cacheDir = await cacheDirOfMount(target, flags.cacheDir, defaultCacheDir());
      const status = await readStatus(cacheDir, target);
      const entry = mountAt(target);
      if (entry && !isKrgoMount(entry)) {
        throw new KrgoError('NOT_KRGO_MOUNT', `${target} is not a krgo mount (it is ${entry.fstype} from ${entry.source}); krgo umount leaves it alone`);
      }
      const owner = status && isMountProcess(status) ? status : undefined;
      if (entry) {
        const result = entry.fstype === 'overlay' ? await unmountOverlay(target, flags.force === true) : await fusermountUnmount(target, flags.force === true);
        if (result === 'busy') {
          throw new KrgoError('MOUNT_BUSY', `${target} is in use (a program has a file open or its working directory in it); stop what uses it, or run krgo umount --force ${mountpoint} to detach it anyway`);
        }
      } else if (!status) throw new KrgoError('NOT_FOUND', `${target} is not mounted`);
      // The mount process sees its mount gone and ends on its own (writing a recorded profile first).
      if (owner && !(await waitForExit(owner, 15_000))) {
        process.kill(owner.pid, 'SIGTERM');
        await waitForExit(owner, 15_000);
      }
      // A writable mount whose process died: its lower tree (a dead FUSE mount) goes too.
      if (status?.writable && !owner && isMounted(status.writable.lower)) await fusermountUnmount(status.writable.lower, true).catch(() => undefined);
      await removeStatus(cacheDir, target);
      await withdrawMount(target);
      process.stdout.write(entry ? `unmounted ${target}\n` : `cleared the stale record of ${target} (it was no longer mounted)\n`);
    });
}
