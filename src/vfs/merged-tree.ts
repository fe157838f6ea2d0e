import { nameByteLength } from '../tar/name-bytes.js';
import type { EntryType, StargzChunk, TarEntry } from '../tar/tar-entry.js';
import type { EntryData } from '../tar/tar-parser.js';
import { LayerRules, type ApplyStats } from '../layers/layer-rules.js';
import type { TreeOps } from '../layers/tree-ops.js';

export type NodeType = Exclude<EntryType, 'hardlink'>;

/** Where a regular file's bytes are: a range of one layer's uncompressed tar stream. */
export interface ContentRef {
  layer: number;
  offset: number;
  size: number;
  /** eStargz layers: the file's chunks, in place of a range of the uncompressed stream. */
  chunks?: StargzChunk[];
}

/** An inode of the merged image; hardlinked names share one. */
export interface Inode {
  ino: number;
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: { sec: number; nsec: number };
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, Buffer>;
  nlink: number;
  content?: ContentRef;
  /** What the file asks for when used (TarEntry.deps), when its layer's index knows. */
  deps?: string[];
  children?: Map<string, Dentry>;
}

/** A name in a directory. The rules engine works on names, as it does on a host tree. */
export interface Dentry {
  inode: Inode;
}

export interface ReadSpan {
  layer: number;
  /** Offset in the layer's uncompressed stream (for eStargz: in the file, see `chunks`). */
  offset: number;
  length: number;
  chunks?: StargzChunk[];
}

const EPOCH: Readonly<Inode['mtime']> = Object.freeze({ sec: 0, nsec: 0 });
/** Most inodes have no xattrs: they share one frozen empty set (a mount makes thousands). */
const NO_XATTRS: Record<string, Buffer> = Object.freeze({});

function hasKeys(record: object): boolean {
  for (const _ in record) return true;
  return false;
}

/** A name is gone: the inode loses a link; a directory takes its whole subtree with it. */
function unlinkInode(gone: Inode): void {
  // Iterative: crafted layers nest directories deeper than the call stack goes.
  const pending = [gone];
  while (pending.length > 0) {
    const inode = pending.pop()!;
    inode.nlink--;
    if (inode.type !== 'dir') continue;
    for (const child of inode.children!.values()) pending.push(child.inode);
    inode.children!.clear();
  }
}

/**
 * The image as a pure in-memory tree: layer indexes (or tar streams) stacked with the same rules
 * engine `krgo pull` uses on disk, answering lookup, readdir, readlink, getattr and read plans.
 * No FUSE, no network.
 */
export class MergedTree implements TreeOps<Dentry> {
  readonly root: Dentry;
  private nextIno = 1;
  private layer = 0;
  private readonly rules: LayerRules<Dentry>;

  constructor(warn: (message: string) => void = () => undefined) {
    this.root = { inode: this.newInode('dir', 0o755) };
    this.rules = new LayerRules(this, warn);
  }

  /** Stacks the next layer, given as its uncompressed tar (or a replay of its index). */
  async addLayer(tar: AsyncIterable<Buffer | Uint8Array | string>): Promise<ApplyStats> {
    const stats = await this.rules.applyLayer(tar);
    this.layer++;
    return stats;
  }

  /** Stacks the next layer from its index: no layer bytes needed. */
  async addLayerEntries(entries: Iterable<TarEntry>): Promise<ApplyStats> {
    const stats = await this.rules.applyEntries(entries);
    this.layer++;
    return stats;
  }

  private newInode(type: NodeType, mode: number): Inode {
    // Shared placeholders: setMetadata replaces them, never changes them.
    return { ino: this.nextIno++, type, mode, uid: 0, gid: 0, size: 0, mtime: EPOCH, linkname: '', devmajor: 0, devminor: 0, xattrs: NO_XATTRS, nlink: 1, ...(type === 'dir' ? { children: new Map() } : {}) };
  }

  // --- TreeOps: what the rules engine drives ---

  child(dir: Dentry, name: string): Dentry | undefined {
    return dir.inode.children?.get(name);
  }
  isDir(node: Dentry): boolean {
    return node.inode.type === 'dir';
  }
  symlinkTarget(node: Dentry): string | undefined {
    return node.inode.type === 'symlink' ? node.inode.linkname : undefined;
  }
  makeImplicitDir(dir: Dentry, name: string): Dentry {
    const dentry = { inode: this.newInode('dir', 0o755) };
    dir.inode.children!.set(name, dentry);
    return dentry;
  }
  remove(dir: Dentry, name: string): void {
    const gone = dir.inode.children!.get(name);
    if (!gone) return;
    dir.inode.children!.delete(name);
    unlinkInode(gone.inode);
  }
  childNames(dir: Dentry): string[] {
    return [...(dir.inode.children?.keys() ?? [])];
  }
  create(dir: Dentry, name: string, entry: TarEntry, _data: EntryData, existingDir: Dentry | undefined, linkTarget: Dentry | undefined): Dentry {
    if (linkTarget) {
      const link = { inode: linkTarget.inode };
      linkTarget.inode.nlink++;
      dir.inode.children!.set(name, link);
      return link;
    }
    const dentry = existingDir ?? { inode: this.newInode(entry.type as NodeType, entry.mode) };
    this.setMetadata(dentry.inode, entry);
    if (entry.type === 'file') {
      dentry.inode.content = { layer: this.layer, offset: entry.dataOffset, size: entry.size, ...(entry.chunks ? { chunks: entry.chunks } : {}) };
      if (entry.deps) dentry.inode.deps = entry.deps;
      else delete dentry.inode.deps;
    }
    dir.inode.children!.set(name, dentry);
    return dentry;
  }
  updateRoot(entry: TarEntry): void {
    this.setMetadata(this.root.inode, entry);
  }
  finishLayer(): void {}

  private setMetadata(inode: Inode, entry: TarEntry): void {
    // A symlink has no mode of its own: lstat shows 0777 on Linux whatever the tar says (as pull writes it).
    inode.mode = entry.type === 'symlink' ? 0o777 : entry.mode & 0o7777;
    inode.uid = entry.uid;
    inode.gid = entry.gid;
    inode.size = entry.type === 'file' ? entry.size : entry.type === 'symlink' ? nameByteLength(entry.linkname) : 0;
    inode.mtime = { sec: entry.mtime, nsec: entry.mtimeNsec };
    inode.linkname = entry.type === 'symlink' ? entry.linkname : '';
    inode.devmajor = entry.devmajor;
    inode.devminor = entry.devminor;
    // What the host applier would set: overlayfs internals are never taken from an image.
    inode.xattrs = hasKeys(entry.xattrs) ? Object.fromEntries(Object.entries(entry.xattrs).filter(([k]) => !k.startsWith('trusted.overlay.'))) : NO_XATTRS;
  }

  // --- Queries: what a filesystem adapter asks ---

  /** The inode at an absolute path, following no symlink (the kernel resolves those itself). */
  lookup(path: string): Inode | undefined {
    let node: Dentry | undefined = this.root;
    for (const part of path.split('/')) {
      if (part === '' || part === '.') continue;
      node = node.inode.children?.get(part);
      if (!node) return undefined;
    }
    return node.inode;
  }

  readdir(inode: Inode): string[] {
    return [...(inode.children?.keys() ?? [])].sort();
  }

  /**
   * Every path below `inode`, depth first, sorted; iterative, so no depth overflows the stack.
   * `namesOf` lists a directory sorted (a caller walking often keeps them).
   */
  *walk(inode: Inode = this.root.inode, prefix = '', namesOf: (dir: Inode) => string[] = (dir) => this.readdir(dir)): Generator<[string, Inode]> {
    const stack: { prefix: string; names: string[]; dir: Inode; next: number }[] = [{ prefix, names: namesOf(inode), dir: inode, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next >= top.names.length) {
        stack.pop();
        continue;
      }
      const name = top.names[top.next++]!;
      const child = top.dir.children!.get(name)!.inode;
      const path = `${top.prefix}/${name}`;
      yield [path, child];
      if (child.type === 'dir') stack.push({ prefix: path, names: namesOf(child), dir: child, next: 0 });
    }
  }

  /** Which bytes of which layer hold [offset, offset+length) of a file; empty past its end. */
  readPlan(inode: Inode, offset: number, length: number): ReadSpan | undefined {
    if (!inode.content || offset >= inode.size || length <= 0) return undefined;
    const chunks = inode.content.chunks;
    const span = { layer: inode.content.layer, length: Math.min(length, inode.size - offset) };
    return chunks ? { ...span, offset, chunks } : { ...span, offset: inode.content.offset + offset };
  }
}
