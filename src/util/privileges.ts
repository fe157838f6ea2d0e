import { accessSync, constants } from 'node:fs';
import { KrgoError } from '../errors.js';

/**
 * Writing an image's tree needs root: its owners (lchown), device nodes (mknod) and trusted
 * xattrs are root's to set. Refused up front, before anything is fetched or written, rather than
 * failing halfway with EPERM on some file.
 */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new KrgoError('NEEDS_PRIVILEGE', `${what} needs root: an image's files keep their owners and device nodes, which only root can set (run it with sudo); nothing was written`);
  }
}

/** A FUSE mount needs read and write access to /dev/fuse (root, or the group owning it where fusermount is allowed). */
export function requireFuseAccess(): void {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? '/dev/fuse does not exist (load the fuse module, or pass --device /dev/fuse to the container krgo runs in)' : 'no read-write access to /dev/fuse (run as root, or as a member of the group that owns it)';
    throw new KrgoError('NEEDS_PRIVILEGE', `krgo mount needs FUSE: ${why}`);
  }
}
