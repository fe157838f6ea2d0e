import Fuse from 'fuse-native';
import { constants } from 'node:fs';
import type { Inode, MergedTree } from '../vfs/merged-tree.js';
import { Errno, errnoForRead } from './errno.js';
import { fromLatin1, toLatin1 } from '../tar/name-bytes.js';

export interface FuseMountOptions {
  /**
   * Reads `length` bytes of a file at `offset`; may fetch from the registry. The bytes come
   * whole or in pieces in order, and are copied into the kernel's buffer, never kept.
   */
  readFile(inode: Inode, offset: number, length: number, path: string): Promise<Buffer | readonly Buffer[]>;
  /** Told when a file is first read, so the rest of its bytes (and what it needs) can be fetched ahead. */
  firstRead?(inode: Inode, path: string): void;
  log(message: string): void;
  fsname: string;
  /** Above the slowest range fetch, retries included (fuse-native answers ETIMEDOUT past it). */
  opTimeoutMs?: number;
}

export interface MountedFs {
  unmount(): Promise<void>;
}

const TYPE_BITS: Record<Inode['type'], number> = {
  file: constants.S_IFREG,
  dir: constants.S_IFDIR,
  symlink: constants.S_IFLNK,
  char: constants.S_IFCHR,
  block: constants.S_IFBLK,
  fifo: constants.S_IFIFO,
};

const makedev = (major: number, minor: number): number => ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;

type Cb = (...args: unknown[]) => void;

/**
 * A read-only FUSE filesystem over a merged tree (fuse-native, libfuse 2 high-level API).
 * Inode numbers come from the tree (use_ino), so hardlinks share one; see native-notes/fuse.md.
 * The tree may still be on its way (its indexes in flight): the kernel mount is made meanwhile,
 * and calls wait for the tree (EIO if it never comes).
 */
export function mountTree(mountpoint: string, treeOrPending: MergedTree | Promise<MergedTree>, options: FuseMountOptions): Promise<MountedFs> {
  let tree!: MergedTree;
  let treeReady = false;
  const ready = Promise.resolve(treeOrPending).then((built) => {
    tree = built;
    treeReady = true;
  });
  /** statfs's totals: counted at the first call, not on the way to ready. */
  let totals: { inodes: number; bytes: number } | undefined;
  const countTotals = () => {
    let inodes = 0;
    let bytes = 0;
    for (const [, inode] of tree.walk()) {
      inodes++;
      bytes += inode.size;
    }
    return { inodes, bytes };
  };
  ready.catch(() => undefined);
  /** An operation that needs the tree: run now, or once the tree is there. */
  const withTree =
    <A extends unknown[]>(op: (...args: A) => void) =>
    (...args: A): void => {
      if (treeReady) return op(...args);
      ready.then(
        () => op(...args),
        () => (args[args.length - 1] as Cb)(Errno.EIO),
      );
    };
  // Stat objects never change (the image is immutable): built once per inode.
  const stats = new WeakMap<Inode, ReturnType<typeof buildStat>>();
  const stat = (inode: Inode) => {
    let cached = stats.get(inode);
    if (!cached) stats.set(inode, (cached = buildStat(inode)));
    return cached;
  };
  const buildStat = (inode: Inode) => {
    const subdirs = inode.type === 'dir' ? [...inode.children!.values()].filter((d) => d.inode.type === 'dir').length : 0;
    const mtime = inode.mtime.sec * 1000 + Math.floor(inode.mtime.nsec / 1e6);
    // Below the millisecond: carried by krgo's fuse-native patch (scripts/build-fuse-native.mjs).
    const subMsNs = inode.mtime.nsec % 1e6;
    return {
      mode: TYPE_BITS[inode.type] | inode.mode,
      uid: inode.uid,
      gid: inode.gid,
      size: inode.size,
      nlink: inode.type === 'dir' ? 2 + subdirs : inode.nlink,
      ino: inode.ino,
      rdev: makedev(inode.devmajor, inode.devminor),
      blksize: 4096,
      blocks: Math.ceil(inode.size / 512),
      mtime,
      atime: mtime,
      ctime: mtime,
      mtimeSubMsNs: subMsNs,
      atimeSubMsNs: subMsNs,
      ctimeSubMsNs: subMsNs,
    };
  };
  // Paths and names cross fuse-native as Latin-1, one character per byte (scripts/build-fuse-native.mjs).
  const withInode = (path: string, cb: Cb, then: (inode: Inode) => void) => {
    const inode = tree.lookup(fromLatin1(path));
    if (!inode) cb(Errno.ENOENT);
    else then(inode);
  };
  const readOnly = (...args: unknown[]) => (args[args.length - 1] as Cb)(Errno.EROFS);

  const readBefore = new Set<number>();
  const ops = {
    // No open, fgetattr, access, release, opendir: libfuse answers those without a trip to this
    // thread (the `ro` mount makes the kernel refuse write opens with EROFS, default_permissions
    // makes it check access, kernel_cache still applies). Re-reading cached files then costs no
    // call here at all: warm reads of small files ran about twice as fast without `open`.
    // What an open used to start (prefetch) starts at a file's first read instead.
    getattr: withTree((path: string, cb: Cb) => withInode(path, cb, (inode) => cb(0, stat(inode)))),
    readdir: withTree((path: string, cb: Cb) =>
      withInode(path, cb, (inode) => (inode.type === 'dir' ? cb(0, ['.', '..', ...tree.readdir(inode).map(toLatin1)]) : cb(Errno.ENOTDIR))),
    ),
    readlink: withTree((path: string, cb: Cb) => withInode(path, cb, (inode) => (inode.type === 'symlink' ? cb(0, toLatin1(inode.linkname)) : cb(Errno.EINVAL)))),
    read: withTree((latin1Path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      const path = fromLatin1(latin1Path);
      const inode = tree.lookup(path);
      if (!inode) return cb(Errno.ENOENT);
      if (inode.type !== 'file') return cb(Errno.EISDIR);
      if (!readBefore.has(inode.ino)) {
        readBefore.add(inode.ino);
        options.firstRead?.(inode, path);
      }
      options.readFile(inode, pos, len, path).then(
        (data) => {
          let filled = 0;
          for (const part of Buffer.isBuffer(data) ? [data] : data) filled += part.copy(buf, filled);
          cb(filled);
        },
        (err: unknown) => {
          options.log(`read of ${path} at ${pos} failed: ${(err as Error).message}`);
          cb(errnoForRead(err));
        },
      );
    }),
    getxattr: withTree((path: string, name: string, _position: number, cb: Cb) =>
      withInode(path, cb, (inode) => {
        const value = inode.xattrs[name];
        cb(value ? 0 : Errno.ENODATA, value ?? null);
      }),
    ),
    listxattr: withTree((path: string, cb: Cb) => withInode(path, cb, (inode) => cb(0, Object.keys(inode.xattrs)))),
    statfs: withTree((_path: string, cb: Cb) => {
      const { inodes, bytes } = (totals ??= countTotals());
      cb(0, { bsize: 4096, frsize: 4096, blocks: Math.ceil(bytes / 4096), bfree: 0, bavail: 0, files: inodes, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 });
    }),
    write: readOnly, create: readOnly, unlink: readOnly, mkdir: readOnly, rmdir: readOnly, rename: readOnly,
    chmod: readOnly, chown: readOnly, truncate: readOnly, ftruncate: readOnly, utimens: readOnly,
    symlink: readOnly, link: readOnly, setxattr: readOnly, removexattr: readOnly, mknod: readOnly,
  };

  const root = process.getuid?.() === 0;
  const fuse = new Fuse(mountpoint, ops as unknown as Record<string, (...args: never[]) => void>, {
    // fuse-native has no use_ino, ro or negative_timeout flags; its option string is joined
    // verbatim, so they ride in the subtype value (see native-notes/fuse.md).
    subtype: 'krgo,use_ino,ro,negative_timeout=3600',
    fsname: options.fsname.replace(/[^A-Za-z0-9@:/._-]/g, '_'),
    kernelCache: true,
    entryTimeout: 3600,
    attrTimeout: 3600,
    acAttrTimeout: 3600,
    maxRead: 131072,
    autoUnmount: true,
    allowOther: root,
    defaultPermissions: root,
    timeout: options.opTimeoutMs ?? 300_000,
  });
  return new Promise((resolve, reject) => {
    fuse.mount((err) => {
      if (err) {
        reject(err);
        return;
      }
      resolve({
        unmount: () =>
          new Promise<void>((res, rej) => {
            fuse.unmount((e) => (e ? rej(e) : res()));
          }),
      });
    });
  });
}
