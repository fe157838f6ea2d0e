import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { writeFileAtomically } from '../util/atomic-write.js';
import { join, resolve } from 'node:path';

/** What a running mount tells `krgo status` and `krgo umount`, through a file in the cache dir. */
export interface MountStatus {
  pid: number;
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
}

export function statusPath(cacheDir: string, mountpoint: string): string {
  const id = createHash('sha256').update(resolve(mountpoint)).digest('hex').slice(0, 16);
  return join(cacheDir, 'mounts', `${id}.json`);
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

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
