import { join, resolve } from 'node:path';
import { cacheDirOfMount } from '../mount/mount-registry.js';
import { readStatus } from '../mount/mount-status.js';
import { readBaseImage, writableStateDir } from '../mount/overlay.js';

/** A writable mount's change, found from its mountpoint (mounted now, or its default upper kept under the cache). */
export interface WritableTarget {
  mountpoint: string;
  cacheDir: string;
  upper: string;
  state: string;
}

/** The writable mount on `dir`, or undefined when `dir` is no writable krgo mountpoint (nor was one with its change kept). */
export async function findWritable(dir: string, givenCacheDir: string | undefined, defaultCacheDir: string): Promise<WritableTarget | undefined> {
  const mountpoint = resolve(dir);
  const cacheDir = await cacheDirOfMount(mountpoint, givenCacheDir, defaultCacheDir);
  const status = await readStatus(cacheDir, mountpoint);
  if (status?.writable) {
    const state = status.writable.state ?? writableStateDir(cacheDir, mountpoint, undefined);
    return { mountpoint, cacheDir, upper: status.writable.upper, state };
  }
  const state = writableStateDir(cacheDir, mountpoint, undefined);
  if (!(await readBaseImage(state))) return undefined;
  return { mountpoint, cacheDir, upper: join(state, 'upper'), state };
}
