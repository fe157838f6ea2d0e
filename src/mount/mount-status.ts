import type { ImageConfigFile } from '../image/runtime-spec.js';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { writeFileAtomically } from '../util/atomic-write.js';
import { join, resolve } from 'node:path';
import { isSameProcess } from '../util/process-identity.js';
export { processAlive, processStartTime } from '../util/process-identity.js';

/** What a running mount tells `krgo status` and `krgo umount`, through a file in the cache dir. */
export interface MountStatus {
  pid: number;
  /** The mount process's start time (clock ticks after boot, /proc/PID/stat): a reused PID is not it. */
  pidStartTime?: number;
  reference: string;
  manifestDigest: string;
  mountpoint: string;
  startedAt: string;
  readyAt?: string;
  /** Milliseconds from start until the mount answered. */
  readyMs?: number;
  requests: number;
  /** The access profile replayed after ready: files it names, found here, and whether all is in. */
  prefetch?: { files: number; missing: number; done: boolean };
  layers: { digest: string; size: number; fetched: number; indexSource: 'cache' | 'registry' | 'built'; indexBytes: number }[];
  /** A writable mount: its overlay's upper directory (the change) and lower (the lazy tree). */
  writable?: { upper: string; lower: string; state?: string };
  /** The image config without its history and layer list: how it means to be run, for krgo run and krgo bundle. */
  imageConfig?: ImageConfigFile;
}

/** A short stable name for a mountpoint: its status file, its announcement, its writable directories. */
export function mountpointId(mountpoint: string): string {
  return createHash('sha256').update(resolve(mountpoint)).digest('hex').slice(0, 16);
}

export function statusPath(cacheDir: string, mountpoint: string): string {
  const id = mountpointId(mountpoint);
  return join(cacheDir, 'mounts', `${id}.json`);
}

/** Where `krgo mount -d` sends the output of its background process. */
export function mountLogPath(cacheDir: string, mountpoint: string): string {
  return join(cacheDir, 'mounts', `${resolve(mountpoint).replace(/[^A-Za-z0-9]+/g, '_')}.log`);
}

/** Status files (and logs) of mounts whose process is gone and whose mount went with it. */
export async function removeDeadMountRecords(cacheDir: string, isMounted: (mountpoint: string) => boolean): Promise<void> {
  const dir = join(cacheDir, 'mounts');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const status = await readFile(join(dir, name), 'utf8').then((t) => JSON.parse(t) as MountStatus).catch(() => undefined);
    if (!status || typeof status.pid !== 'number' || typeof status.mountpoint !== 'string') continue;
    if (isMountProcess(status) || isMounted(status.mountpoint)) continue;
    // The log first: the record is what finds it, so a sweep cut short here is finished by the next.
    await rm(mountLogPath(cacheDir, status.mountpoint), { force: true });
    await rm(join(dir, name), { force: true });
  }
}

export async function writeStatus(cacheDir: string, status: MountStatus): Promise<void> {
  await writeFileAtomically(statusPath(cacheDir, status.mountpoint), `${JSON.stringify(status, null, 2)}\n`);
}

export async function readStatus(cacheDir: string, mountpoint: string): Promise<MountStatus | undefined> {
  try {
    return JSON.parse(await readFile(statusPath(cacheDir, mountpoint), 'utf8')) as MountStatus;
  } catch {
    return undefined;
  }
}

export async function removeStatus(cacheDir: string, mountpoint: string): Promise<void> {
  await rm(statusPath(cacheDir, mountpoint), { force: true });
}

/** Whether the process the status names still runs: the same PID and the same start time. */
export function isMountProcess(status: MountStatus): boolean {
  return isSameProcess(status.pid, status.pidStartTime);
}
