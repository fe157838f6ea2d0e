import type { Command } from 'commander';
import { resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { processAlive, readStatus, removeStatus } from '../mount/mount-status.js';
import { fusermountUnmount, isMounted } from '../mount/mount-table.js';
import { defaultCacheDir } from '../util/paths.js';

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .description('unmount a krgo mount; also clears a dead mount left by a killed process')
    .argument('<mountpoint>')
    .option('--cache-dir <dir>', 'the cache dir the mount was made with')
    .action(async (mountpoint: string, flags: { cacheDir?: string }) => {
      const cacheDir = flags.cacheDir ?? defaultCacheDir();
      const target = resolve(mountpoint);
      const status = await readStatus(cacheDir, target);
      if (status && processAlive(status.pid)) {
        process.kill(status.pid, 'SIGTERM');
        const deadline = Date.now() + 15_000;
        while (processAlive(status.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      }
      if (isMounted(target)) await fusermountUnmount(target);
      else if (!status) throw new KrgoError('NOT_FOUND', `${target} is not mounted`);
      await removeStatus(cacheDir, target);
      process.stdout.write(`unmounted ${target}\n`);
    });
}
