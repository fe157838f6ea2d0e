import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { mountpointId } from './mount-status.js';
import { KRGO_OVERLAY_SOURCE_PREFIX } from './mount-table.js';

/**
 * A writable mount: kernel overlayfs with the lazy FUSE tree as its lower layer and an upper
 * directory krgo keeps (under the cache, or --upper), so writes run at native speed and survive
 * the mount. Mounted with redirect_dir, metacopy and index off, so the upper directory alone
 * describes the change (whiteouts as 0/0 devices, opaque directories by xattr, whole-file
 * copy-ups): what `krgo commit` will turn into a layer. See native-notes/fuse.md.
 */
export interface OverlayDirs {
  /** Where the FUSE tree is mounted (the overlay's lower layer). */
  lower: string;
  upper: string;
  work: string;
}

const OPTIONS = 'redirect_dir=off,metacopy=off,index=off,xino=off';

function run(cmd: string, args: string[]): Promise<{ ok: boolean; message: string }> {
  return new Promise((done) => execFile(cmd, args, (err, _out, stderr) => done({ ok: !err, message: String(stderr).trim() || (err?.message ?? '') })));
}

/**
 * The directories of a writable mount on `mountpoint`: the upper (and work) directory given, or
 * kept under the cache per mountpoint, so the same mountpoint brings its changes back.
 */
export async function overlayDirs(cacheDir: string, mountpoint: string, upper: string | undefined, manifestDigest: string): Promise<OverlayDirs> {
  const base = join(cacheDir, 'writable', mountpointId(mountpoint));
  const dirs = {
    lower: join(base, 'lower'),
    upper: upper ? resolve(upper) : join(base, 'upper'),
    // overlayfs wants its work dir on the upper's file system: beside it.
    work: upper ? `${resolve(upper)}.krgo-work` : join(base, 'work'),
  };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  // The upper directory is a change to one image: another image under it would be another tree.
  const record = join(dirs.upper === join(base, 'upper') ? base : `${dirs.upper}.krgo-work`, 'image.json');
  const known = await readFile(record, 'utf8').then((t) => (JSON.parse(t) as { manifestDigest?: string }).manifestDigest).catch(() => undefined);
  const upperUsed = (await readdir(dirs.upper)).length > 0;
  if (known && known !== manifestDigest && upperUsed) {
    throw new KrgoError('TARGET_EXISTS', `the upper directory ${dirs.upper} holds changes to another image (${known}); choose another --upper, or remove it`);
  }
  await writeFileAtomically(record, `${JSON.stringify({ manifestDigest })}\n`);
  return dirs;
}

export async function mountOverlay(mountpoint: string, dirs: OverlayDirs, name: string): Promise<void> {
  const options = `lowerdir=${dirs.lower},upperdir=${dirs.upper},workdir=${dirs.work},${OPTIONS}`;
  const res = await run('mount', ['-t', 'overlay', `${KRGO_OVERLAY_SOURCE_PREFIX}${name}`.replace(/[\s,]/g, '_'), '-o', options, mountpoint]);
  if (!res.ok) throw new KrgoError('NEEDS_PRIVILEGE', `could not mount overlayfs on ${mountpoint}: ${res.message}`);
}

/** Unmounts an overlay: not lazily unless asked (a busy one answers 'busy'). */
export async function unmountOverlay(mountpoint: string, lazy = false): Promise<'unmounted' | 'busy'> {
  const res = await run('umount', [...(lazy ? ['-l'] : []), mountpoint]);
  if (res.ok) return 'unmounted';
  if (/busy/i.test(res.message)) return 'busy';
  throw new KrgoError('MOUNT_BUSY', `could not unmount ${mountpoint}: ${res.message}`);
}

