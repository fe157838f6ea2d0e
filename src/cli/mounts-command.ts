import type { Command } from 'commander';
import { announcedMounts } from '../mount/mount-registry.js';
import { isMountProcess, readStatus } from '../mount/mount-status.js';
import { isKrgoMount, isWritableLower, mountEntries } from '../mount/mount-table.js';
import { formatBytes } from '../util/format.js';

interface ListedMount {
  mountpoint: string;
  reference: string;
  pid?: number;
  state: 'up' | 'dead';
  fetched?: number;
  size?: number;
}

/** krgo's mounts in this mount namespace, whatever cache dir each uses. */
export async function listMounts(): Promise<ListedMount[]> {
  const pointers = new Map((await announcedMounts()).map((p) => [p.mountpoint, p]));
  const out: ListedMount[] = [];
  for (const entry of mountEntries().filter((e) => isKrgoMount(e) && !isWritableLower(e))) {
    const pointer = pointers.get(entry.mountpoint);
    const status = pointer ? await readStatus(pointer.cacheDir, entry.mountpoint) : undefined;
    const up = status !== undefined && isMountProcess(status);
    out.push({
      mountpoint: entry.mountpoint,
      // The file system's name is krgo:<reference> (fsname), also when no record is left.
      reference: status?.reference ?? entry.source.replace(/^krgo:/, ''),
      ...(status ? { pid: status.pid, fetched: status.layers.reduce((a, l) => a + l.fetched, 0), size: status.layers.reduce((a, l) => a + l.size, 0) } : {}),
      state: up ? 'up' : 'dead',
    });
  }
  return out;
}

export async function printMounts(json: boolean): Promise<void> {
  const mounts = await listMounts();
  if (json) {
    process.stdout.write(`${JSON.stringify(mounts, null, 2)}\n`);
    return;
  }
  if (mounts.length === 0) {
    process.stdout.write('no krgo mounts\n');
    return;
  }
  const rows = mounts.map((m) => [m.mountpoint, m.reference, m.state === 'up' ? `up (pid ${m.pid})` : 'dead: run krgo umount on it', m.fetched !== undefined ? `${formatBytes(m.fetched)} of ${formatBytes(m.size ?? 0)}` : '-']);
  const header = ['MOUNTPOINT', 'IMAGE', 'STATE', 'FETCHED'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}

export function registerMounts(program: Command): void {
  program
    .command('mounts')
    .description('list krgo mounts (also: krgo mount with no arguments), whatever cache dir they use')
    .option('--json', 'one JSON array')
    .action(async (flags: { json?: boolean }) => printMounts(flags.json === true));
}
