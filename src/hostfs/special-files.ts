import { constants } from 'node:fs';
import { nativeFs } from '../native/native-fs.js';
import { fsPath } from '../tar/name-bytes.js';

const TYPE_BITS = { char: constants.S_IFCHR, block: constants.S_IFBLK, fifo: constants.S_IFIFO } as const;

/** Creates a device node or fifo (mode 0600 until the entry's own mode is applied). */
export function makeNode(host: string, kind: 'char' | 'block' | 'fifo', major: number, minor: number): void {
  nativeFs.mknod(fsPath(host), TYPE_BITS[kind] | 0o600, major, minor);
}

/** Sets one xattr without following a symlink at `host`. */
export function setXattr(host: string, name: string, value: Buffer): void {
  nativeFs.lsetxattr(fsPath(host), name, value);
}

/** Removes one xattr without following a symlink at `host`. */
export function removeXattr(host: string, name: string): void {
  nativeFs.lremovexattr(fsPath(host), name);
}

/** A nanosecond count since the epoch (a stat's `mtimeNs`, or its decimal text) as seconds + nanoseconds. */
export function splitNanoseconds(ns: bigint | string): { sec: number; nsec: number } {
  const n = BigInt(ns);
  return { sec: Number(n / 1_000_000_000n), nsec: Number(n % 1_000_000_000n) };
}

/** Sets atime and mtime to the nanosecond, never following a symlink. */
export function setTimes(host: string, atime: { sec: number; nsec: number }, mtime: { sec: number; nsec: number }): void {
  nativeFs.lutimesNs(fsPath(host), atime.sec, atime.nsec, mtime.sec, mtime.nsec);
}
