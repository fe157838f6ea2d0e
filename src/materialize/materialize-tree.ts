import { closeSync, constants, linkSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { fsPath } from '../tar/name-bytes.js';
import type { Inode, MergedTree } from '../vfs/merged-tree.js';
import type { ImageReader } from '../vfs/image-reader.js';
import { limitConcurrency } from '../util/concurrency.js';
import { HostMetadataWriter, type HostMetadata } from './layer-applier.js';
import { makeNode, setTimes } from '../hostfs/special-files.js';

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const PIECE = 8 * 1024 * 1024;

export interface MaterializeStats {
  entries: number;
  bytes: number;
}

function metadataOf(path: string, inode: Inode): HostMetadata {
  return { path, type: inode.type, uid: inode.uid, gid: inode.gid, mode: inode.mode, xattrs: inode.xattrs, atime: inode.mtime, mtime: inode.mtime };
}

/**
 * Writes a merged tree into an empty directory: the layers are already stacked, so every path is
 * written once. File bytes are fetched by the bounded writers (spans shared by single flight); hardlinked names are linked to
 * the first one written; directory times are set last, deepest first.
 */
export async function materializeTree(
  tree: MergedTree,
  root: string,
  reader: ImageReader,
  options: { concurrency?: number; warn: (message: string) => void; onFile?: (bytes: number) => void },
): Promise<MaterializeStats> {
  const metadata = new HostMetadataWriter(options.warn);
  const limit = limitConcurrency(options.concurrency ?? 8);
  const written = new Map<number, Promise<string>>();
  const dirs: [string, Inode][] = [];
  const tasks: Promise<unknown>[] = [];
  let entries = 0;
  let bytes = 0;

  const writeFile = async (host: string, path: string, inode: Inode): Promise<string> => {
    const fd = openSync(fsPath(host), CREATE_FLAGS, 0o600);
    try {
      for (let offset = 0; offset < inode.size; offset += PIECE) {
        const data = await reader.read(inode, offset, Math.min(PIECE, inode.size - offset));
        for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
      }
    } finally {
      closeSync(fd);
    }
    metadata.apply(host, metadataOf(path, inode));
    bytes += inode.size;
    options.onFile?.(inode.size);
    return host;
  };

  for (const [path, inode] of tree.walk()) {
    const host = `${root}${path}`;
    entries++;
    switch (inode.type) {
      case 'dir':
        mkdirSync(fsPath(host), 0o700);
        dirs.push([host, inode]);
        break;
      case 'file': {
        const first = written.get(inode.ino);
        if (first && inode.nlink > 1) {
          tasks.push(first.then((target) => linkSync(fsPath(target), fsPath(host))));
          break;
        }
        const task = limit(() => writeFile(host, path, inode));
        written.set(inode.ino, task);
        tasks.push(task);
        break;
      }
      case 'symlink':
        symlinkSync(fsPath(inode.linkname), fsPath(host));
        metadata.apply(host, metadataOf(path, inode));
        break;
      default:
        makeNode(host, inode.type, inode.devmajor, inode.devminor);
        metadata.apply(host, metadataOf(path, inode));
    }
  }
  // Every write settles before a failure is reported: the caller then removes the staging tree,
  // and a write still running would race that removal (ENOTEMPTY).
  const failed = (await Promise.allSettled(tasks)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  metadata.apply(root, metadataOf('/', tree.root.inode));
  for (const [host, inode] of dirs.reverse()) {
    metadata.apply(host, metadataOf(host.slice(root.length), inode));
    setTimes(host, inode.mtime, inode.mtime);
  }
  return { entries, bytes };
}
