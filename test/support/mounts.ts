import { mkdir } from 'node:fs/promises';
import { krgo } from './krgo-cli.js';
import { isMounted } from '../../src/mount/mount-table.js';

/** Mounts with `krgo mount -d` (a separate process serves FUSE; the test process never does). */
export async function mountDaemon(image: string, mountpoint: string, cacheDir: string): Promise<string> {
  await mkdir(mountpoint, { recursive: true });
  const res = await krgo(['mount', '-d', image, mountpoint, '--cache-dir', cacheDir]);
  if (res.code !== 0) throw new Error(`krgo mount failed (${res.code}): ${res.stderr}${res.stdout}`);
  return res.stdout;
}

export async function unmount(mountpoint: string, cacheDir: string): Promise<void> {
  if (!isMounted(mountpoint)) return;
  const res = await krgo(['umount', mountpoint, '--cache-dir', cacheDir]);
  if (res.code !== 0) throw new Error(`krgo umount failed: ${res.stderr}`);
}
