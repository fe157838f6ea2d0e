import type { Command } from 'commander';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KrgoError } from '../errors.js';
import { DiskSpanStore } from '../cache/disk-span-store.js';
import { sweepCacheGarbage } from '../util/cache-garbage.js';
import { isMountProcess, readStatus, removeDeadMountRecords } from '../mount/mount-status.js';
import { announcedMounts } from '../mount/mount-registry.js';
import { isMounted } from '../mount/mount-table.js';
import { OwnerLock } from '../util/owner-lock.js';
import { defaultCacheDir } from '../util/paths.js';
import { formatBytes } from '../util/format.js';
import { dirUsage } from '../util/dir-usage.js';

const AREAS = [
  ['blobs', 'layer downloads (kept with --keep-blobs; partial ones resume)'],
  ['index', 'layer indexes and their seek windows'],
  ['spans', 'decompressed spans read by mounts (bounded, least recently used dropped)'],
  ['mounts', 'status and logs of mounts'],
] as const;

/** Mounts running on this cache dir: what clear must not pull from under them. */
async function liveMountsOn(cacheDir: string): Promise<string[]> {
  const live: string[] = [];
  for (const pointer of await announcedMounts()) {
    if (pointer.cacheDir !== cacheDir) continue;
    const status = await readStatus(cacheDir, pointer.mountpoint);
    if (status && isMountProcess(status)) live.push(pointer.mountpoint);
  }
  return live;
}

/** Partial downloads no live process is writing: the next pull would resume them, prune drops them. */
async function removeIdlePartials(cacheDir: string): Promise<number> {
  let removed = 0;
  const dir = join(cacheDir, 'blobs', 'sha256');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.partial')) continue;
    const blob = join(dir, name.slice(0, -'.partial'.length));
    if (await OwnerLock.heldByLiveOwner(`${blob}.lock`)) continue;
    await rm(join(dir, name), { force: true });
    removed++;
  }
  return removed;
}

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new KrgoError('USAGE', `not a size: ${JSON.stringify(text)} (say 500M, 2G, 0)`);
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

export function registerCache(program: Command): void {
  const cache = program
    .command('cache')
    .description('show, prune or clear the cache (downloads, layer indexes, spans read by mounts)')
    .option('--cache-dir <dir>', 'the cache dir (default: $XDG_CACHE_HOME/krgo, else ~/.cache/krgo)')
    .addHelpText(
      'after',
      `
Layout of the cache dir:
  blobs/sha256/<hex>[.partial]   layer downloads: kept by pull --keep-blobs; a .partial resumes
  index/sha256/<hex>.v6.idx      layer indexes (tar offsets, gzip seek points), and .windows
  spans/<hex>/<n>                decompressed spans, sealed to their layer and byte range;
                                 at most 2 GiB, least recently used dropped first
  mounts/<id>.json, <path>.log   status of running mounts, logs of mount -d

Examples:
  krgo cache                      # what takes the room
  krgo cache prune --max-spans 500M
  krgo cache clear`,
    )
    .action(async (flags: { cacheDir?: string }) => {
      const dir = flags.cacheDir ?? defaultCacheDir();
      let total = 0;
      const lines = [`${dir}:`];
      for (const [area, what] of AREAS) {
        const { bytes, files } = await dirUsage(join(dir, area));
        total += bytes;
        lines.push(`  ${area.padEnd(7)} ${formatBytes(bytes).padStart(9)}  ${String(files).padStart(6)} files  ${what}`);
      }
      lines.push(`  total   ${formatBytes(total).padStart(9)}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  cache
    .command('prune')
    .description('remove what can be fetched again and nothing uses now: partial downloads, spans beyond --max-spans, leftovers of failed runs, records of dead mounts')
    .option('--max-spans <size>', 'keep at most this much of decompressed spans (least recently used go first)', '1G')
    .action(async (flags: { maxSpans: string }, command: Command) => {
      const dir = (command.parent!.opts() as { cacheDir?: string }).cacheDir ?? defaultCacheDir();
      const before = (await dirUsage(dir)).bytes;
      await sweepCacheGarbage(dir);
      await removeDeadMountRecords(dir, isMounted);
      const partials = await removeIdlePartials(dir);
      await new DiskSpanStore(join(dir, 'spans')).trimTo(parseSize(flags.maxSpans));
      const after = (await dirUsage(dir)).bytes;
      process.stdout.write(`pruned ${dir}: ${formatBytes(before - after)} freed (${partials} partial downloads), ${formatBytes(after)} left\n`);
    });

  cache
    .command('clear')
    .description('remove everything in the cache; refused while a mount uses it')
    .action(async (_flags: unknown, command: Command) => {
      const dir = (command.parent!.opts() as { cacheDir?: string }).cacheDir ?? defaultCacheDir();
      const live = await liveMountsOn(dir);
      if (live.length) throw new KrgoError('MOUNT_BUSY', `mounts use ${dir}: ${live.join(', ')}; unmount them first (krgo umount)`);
      const before = (await dirUsage(dir)).bytes;
      for (const [area] of AREAS) await rm(join(dir, area), { recursive: true, force: true });
      process.stdout.write(`cleared ${dir}: ${formatBytes(before)} freed\n`);
    });
}
