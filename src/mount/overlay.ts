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
  /** krgo's own files for this upper directory: the base image record, commits. */
  state: string;
}

const OPTIONS = 'redirect_dir=off,metacopy=off,index=off,xino=off';

function run(cmd: string, args: string[]): Promise<{ ok: boolean; message: string }> {
  return new Promise((done) => execFile(cmd, args, (err, _out, stderr) => done({ ok: !err, message: String(stderr).trim() || (err?.message ?? '') })));
}

/** What a writable mount records beside its upper directory: the image the change applies to. */
export interface BaseImageRecord {
  reference: string;
  manifestDigest: string;
  manifest: Buffer;
  config: Buffer;
}

/** Where a writable mount keeps its own files (base image, commits) for an upper directory. */
export function writableStateDir(cacheDir: string, mountpoint: string, upper: string | undefined): string {
  return upper ? `${resolve(upper)}.krgo-work` : join(cacheDir, 'writable', mountpointId(mountpoint));
}

const BASE_FILE = 'image.json';

export async function readBaseImage(stateDir: string): Promise<BaseImageRecord | undefined> {
  const text = await readFile(join(stateDir, BASE_FILE), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  let record: { reference?: string; manifestDigest?: string; manifest?: string; config?: string };
  try {
    record = JSON.parse(text) as typeof record;
  } catch {
    throw new KrgoError('GIT_STATE', `the base image record ${join(stateDir, BASE_FILE)} of a writable mount is damaged; mount the image again with -w on the same mountpoint (or --upper) to write it anew`);
  }
  if (!record.manifestDigest) return undefined;
  return {
    reference: record.reference ?? '',
    manifestDigest: record.manifestDigest,
    manifest: Buffer.from(record.manifest ?? '', 'base64'),
    config: Buffer.from(record.config ?? '', 'base64'),
  };
}

/**
 * The directories of a writable mount on `mountpoint`: the upper directory given, or kept under
 * the cache per mountpoint, so the same mountpoint brings its changes back. The base image is
 * recorded beside it (exact manifest and config bytes): `krgo commit` and `push` need no registry
 * to know what the change applies to.
 */
export async function overlayDirs(cacheDir: string, mountpoint: string, upper: string | undefined, base: BaseImageRecord): Promise<OverlayDirs> {
  const state = writableStateDir(cacheDir, mountpoint, upper);
  const dirs = {
    // The lower tree is mounted under the cache whatever --upper says: krgo's to clear if left behind.
    lower: join(writableStateDir(cacheDir, mountpoint, undefined), 'lower'),
    upper: upper ? resolve(upper) : join(state, 'upper'),
    // overlayfs wants its work dir on the upper's file system: beside it.
    work: join(state, 'work'),
    state,
  };
  for (const dir of [dirs.lower, dirs.upper, dirs.work]) await mkdir(dir, { recursive: true });
  // The upper directory is a change to one image: another image under it would be another tree.
  // A damaged record is rewritten below, as a missing one is.
  const known = (await readBaseImage(state).catch(() => undefined))?.manifestDigest;
  const upperUsed = (await readdir(dirs.upper)).length > 0;
  if (known && known !== base.manifestDigest && upperUsed) {
    throw new KrgoError('TARGET_EXISTS', `the upper directory ${dirs.upper} holds changes to another image (${known}); choose another --upper, or remove it`);
  }
  const record = { reference: base.reference, manifestDigest: base.manifestDigest, manifest: base.manifest.toString('base64'), config: base.config.toString('base64') };
  await writeFileAtomically(join(state, BASE_FILE), `${JSON.stringify(record)}\n`);
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

