import type { Command } from 'commander';
import { resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { processAlive, readStatus } from '../mount/mount-status.js';
import { isMounted } from '../mount/mount-table.js';
import { defaultCacheDir } from '../util/paths.js';
import { cacheDirOfMount } from '../mount/mount-registry.js';
import { dirUsage } from '../util/dir-usage.js';
import { formatBytes, formatDuration } from '../util/format.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show how much of each layer a mount has fetched: laziness made visible')
    .argument('<mountpoint>')
    .option('--cache-dir <dir>', 'the cache dir the mount was made with (found by itself for a running mount)')
    .option('--json', 'print the raw status')
    .action(async (mountpoint: string, flags: { cacheDir?: string; json?: boolean }) => {
      const cacheDir = await cacheDirOfMount(mountpoint, flags.cacheDir, defaultCacheDir());
      const status = await readStatus(cacheDir, resolve(mountpoint));
      if (!status) throw new KrgoError('NOT_FOUND', `no krgo mount on ${resolve(mountpoint)}`);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        return;
      }
      const alive = processAlive(status.pid) && isMounted(status.mountpoint);
      const lines = [`${status.reference} on ${status.mountpoint}: ${alive ? `up (pid ${status.pid})` : 'not running'}, ready in ${formatDuration(status.readyMs ?? 0)}, ${status.requests} range requests`];
      if (status.writable) {
        // Entries of the upper directory: paths added, changed or whited out.
        const usage = await dirUsage(status.writable.upper);
        lines.push(`  writable: ${usage.entries} paths changed, ${formatBytes(usage.bytes)} written, in ${status.writable.upper}`);
        if (status.writable.state) {
          const { loadCommits } = await import('../commit/writable-commits.js');
          const commits = await loadCommits(status.writable.state).catch(() => undefined);
          if (commits?.layers.length) lines.push(`  commits: ${commits.layers.length} layer${commits.layers.length > 1 ? 's' : ''} on top of the image (\`krgo push TARGET -r ${status.mountpoint}\` sends them)`);
        }
      }
      if (status.prefetch) {
        const { files, missing, done } = status.prefetch;
        lines.push(`  access profile: ${files} files${missing ? ` (${missing} not in this image)` : ''}, ${done ? 'all fetched' : 'fetching'}`);
      }
      let size = 0;
      let fetched = 0;
      for (const layer of status.layers) {
        size += layer.size;
        fetched += layer.fetched;
        const share = layer.size ? ((100 * layer.fetched) / layer.size).toFixed(1) : '0.0';
        lines.push(`  ${layer.digest.slice(7, 19)}  ${formatBytes(layer.fetched).padStart(9)} of ${formatBytes(layer.size).padStart(9)}  ${share.padStart(5)}%  index ${formatBytes(layer.indexBytes)} (${layer.indexSource})`);
      }
      lines.push(`  total         ${formatBytes(fetched).padStart(9)} of ${formatBytes(size).padStart(9)}  ${(size ? (100 * fetched) / size : 0).toFixed(1).padStart(5)}%`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
