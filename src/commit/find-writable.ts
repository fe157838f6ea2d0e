import { join, resolve } from 'node:path';
import { KrgoError } from '../errors.js';
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

/**
 * The writable mount on `dir`, or undefined when `dir` is no writable krgo mountpoint (nor was
 * one with its change kept). `upper` names the change directly (a mount made with --upper, now
 * unmounted): its state lies beside it.
 */
export async function findWritable(dir: string, givenCacheDir: string | undefined, defaultCacheDir: string, upper?: string): Promise<WritableTarget | undefined> {
  const mountpoint = resolve(dir);
  const cacheDir = await cacheDirOfMount(mountpoint, givenCacheDir, defaultCacheDir);
  if (upper) {
    const state = writableStateDir(cacheDir, mountpoint, upper);
    if (!(await readBaseImage(state))) throw new KrgoError('NOT_FOUND', `${resolve(upper)} is not the upper directory of a writable krgo mount (no ${state})`);
    return { mountpoint, cacheDir, upper: resolve(upper), state };
  }
  const status = await readStatus(cacheDir, mountpoint);
  if (status?.writable) {
    const state = status.writable.state ?? writableStateDir(cacheDir, mountpoint, undefined);
    return { mountpoint, cacheDir, upper: status.writable.upper, state };
  }
  const state = writableStateDir(cacheDir, mountpoint, undefined);
  if (!(await readBaseImage(state))) return undefined;
  return { mountpoint, cacheDir, upper: join(state, 'upper'), state };
}
