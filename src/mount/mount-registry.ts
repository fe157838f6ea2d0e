import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../util/atomic-write.js';
import { mountpointId } from './mount-status.js';
import { runtimeDir } from '../util/paths.js';

/**
 * A pointer from a mountpoint to the cache dir its mount keeps its status in, in one
 * well-known runtime directory: `krgo status`, `umount` and `mounts` find every mount without
 * being told its --cache-dir.
 */
export interface MountPointer {
  mountpoint: string;
  cacheDir: string;
  pid: number;
}

function pointerPath(mountpoint: string): string {
  return join(runtimeDir(), 'mounts', `${mountpointId(mountpoint)}.json`);
}

export async function announceMount(pointer: MountPointer): Promise<void> {
  await writeFileAtomically(pointerPath(pointer.mountpoint), `${JSON.stringify(pointer)}\n`);
}

export async function withdrawMount(mountpoint: string): Promise<void> {
  await rm(pointerPath(mountpoint), { force: true });
}

export async function findMount(mountpoint: string): Promise<MountPointer | undefined> {
  return readFile(pointerPath(mountpoint), 'utf8').then((t) => JSON.parse(t) as MountPointer).catch(() => undefined);
}

export async function announcedMounts(): Promise<MountPointer[]> {
  const dir = join(runtimeDir(), 'mounts');
  const names = await readdir(dir).catch(() => [] as string[]);
  const found = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => readFile(join(dir, n), 'utf8').then((t) => JSON.parse(t) as MountPointer).catch(() => undefined)));
  return found.filter((p): p is MountPointer => p !== undefined);
}

/** The cache dir of the mount on `mountpoint`: the one given, else the announced one, else the default. */
export async function cacheDirOfMount(mountpoint: string, given: string | undefined, fallback: string): Promise<string> {
  return given ?? (await findMount(mountpoint))?.cacheDir ?? fallback;
}
