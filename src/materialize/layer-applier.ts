import { chmodSync, closeSync, linkSync, lchownSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeSync, constants } from 'node:fs';
import { describeError } from '../errors.js';
import type { TarEntry } from '../tar/tar-entry.js';
import { decodeName, fsPath } from '../tar/name-bytes.js';
import type { EntryData } from '../tar/tar-parser.js';
import { LayerRules, type ApplyStats } from '../layers/layer-rules.js';
import type { TreeOps } from '../layers/tree-ops.js';
import { makeNode, setTimes, setXattr, splitNanoseconds } from '../hostfs/special-files.js';

export type { ApplyStats };

export interface ApplierOptions {
  /** Told about every entry skipped for safety or validity. */
  warn: (message: string) => void;
}

type Time = { sec: number; nsec: number };

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Xattrs an image must never set on the host: overlayfs internals would be trusted by the kernel. */
const FORBIDDEN_XATTR = /^trusted\.overlay\./;

/**
 * The layer rules on a host directory: nodes are host paths, every path is resolved by the rules
 * engine inside the root, and the last component is never followed (O_NOFOLLOW|O_EXCL, l* calls).
 */
class HostTree implements TreeOps<string> {
  private dirTimes = new Map<string, { atime: Time; mtime: Time }>();
  /** Times of directories a layer changed without describing them, put back when it ends. */
  private untouchedTimes = new Map<string, { atime: Time; mtime: Time }>();
  private readonly metadata: HostMetadataWriter;
  /**
   * Real directories (not symlinks) known to exist: resolving a path walks its components, and
   * without this each one costs three lstat calls per entry. Only this applier writes the tree
   * (a staging directory), so what it made or saw stays true until it removes it.
   */
  private readonly knownDirs = new Set<string>();

  constructor(
    readonly root: string,
    warn: (message: string) => void,
  ) {
    this.metadata = new HostMetadataWriter(warn);
  }

  child(dir: string, name: string): string | undefined {
    const host = `${dir}/${name}`;
    if (this.knownDirs.has(host)) return host;
    const st = lstatSync(fsPath(host), { throwIfNoEntry: false });
    if (st?.isDirectory()) this.knownDirs.add(host);
    return st ? host : undefined;
  }
  isDir(node: string): boolean {
    return this.knownDirs.has(node) || lstatSync(fsPath(node)).isDirectory();
  }
  symlinkTarget(node: string): string | undefined {
    if (this.knownDirs.has(node)) return undefined;
    return lstatSync(fsPath(node)).isSymbolicLink() ? decodeName(readlinkSync(fsPath(node), { encoding: 'buffer' })) : undefined;
  }
  makeImplicitDir(dir: string, name: string): string {
    const host = `${dir}/${name}`;
    mkdirSync(fsPath(host), 0o755);
    chmodSync(fsPath(host), 0o755);
    this.knownDirs.add(host);
    return host;
  }
  remove(dir: string, name: string): void {
    this.keepParentTimes(dir);
    const host = `${dir}/${name}`;
    if (this.knownDirs.has(host)) {
      for (const known of this.knownDirs) if (known === host || known.startsWith(`${host}/`)) this.knownDirs.delete(known);
    }
    rmSync(fsPath(host), { recursive: true, force: true });
  }

  /**
   * A layer sets only the times it carries: adding or removing an entry must not leave its
   * parent with the time of the extraction (as umoci, which restores the parent after each
   * entry; the root excepted).
   */
  private keepParentTimes(dir: string): void {
    if (dir === this.root || this.untouchedTimes.has(dir)) return;
    const st = lstatSync(fsPath(dir), { bigint: true });
    this.untouchedTimes.set(dir, { atime: splitNanoseconds(st.atimeNs), mtime: splitNanoseconds(st.mtimeNs) });
  }
  childNames(dir: string): string[] {
    return readdirSync(fsPath(dir), { encoding: 'buffer' }).map(decodeName);
  }

  async create(dir: string, name: string, entry: TarEntry, data: EntryData, existingDir: string | undefined, linkTarget: string | undefined): Promise<string> {
    const host = `${dir}/${name}`;
    this.keepParentTimes(dir);
    switch (entry.type) {
      case 'file': {
        const fd = openSync(fsPath(host), CREATE_FLAGS, 0o600);
        try {
          for await (const chunk of data.chunks()) {
            for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
          }
        } finally {
          closeSync(fd);
        }
        break;
      }
      case 'dir':
        if (!existingDir) mkdirSync(fsPath(host), 0o700);
        this.knownDirs.add(host);
        break;
      case 'symlink':
        symlinkSync(fsPath(entry.linkname), fsPath(host));
        break;
      case 'hardlink':
        linkSync(fsPath(linkTarget!), fsPath(host));
        return host; // the link shares the target's inode and metadata
      case 'char':
      case 'block':
      case 'fifo':
        makeNode(host, entry.type, entry.devmajor, entry.devminor);
        break;
    }
    this.applyMetadata(host, entry);
    return host;
  }

  updateRoot(entry: TarEntry): void {
    this.applyMetadata(this.root, entry);
  }

  finishLayer(): void {
    // Directory times last, deepest first, once their children are in place; a directory's own
    // entry wins over the times it had before the layer.
    for (const [host, times] of this.untouchedTimes) if (!this.dirTimes.has(host)) this.dirTimes.set(host, times);
    this.untouchedTimes = new Map();
    const dirs = [...this.dirTimes.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [host, t] of dirs) {
      // A later entry of the same layer may have removed the directory.
      if (lstatSync(fsPath(host), { throwIfNoEntry: false })?.isDirectory()) setTimes(host, t.atime, t.mtime);
    }
    this.dirTimes = new Map();
  }

  private applyMetadata(host: string, entry: TarEntry): void {
    const mtime = { sec: entry.mtime, nsec: entry.mtimeNsec };
    const atime = entry.atime !== undefined ? { sec: entry.atime, nsec: entry.atimeNsec ?? 0 } : mtime;
    const meta = { path: entry.path, type: entry.type, uid: entry.uid, gid: entry.gid, mode: entry.mode, xattrs: entry.xattrs, atime, mtime };
    const timesLater = this.metadata.apply(host, meta);
    if (timesLater) this.dirTimes.set(host, { atime, mtime });
  }
}

export interface HostMetadata {
  /** For messages. */
  path: string;
  type: string;
  uid: number;
  gid: number;
  mode: number;
  xattrs: Record<string, Buffer>;
  atime: Time;
  mtime: Time;
}

/** Writes metadata onto host nodes with the rules both `pull` and `materialize` follow. */
export class HostMetadataWriter {
  private chownWarned = false;

  constructor(private readonly warn: (message: string) => void) {}

  /**
   * Owner, then mode (chown clears setuid), then xattrs, then times. Directory times are left to
   * the caller (they change as children are added): returns true when it did not set them.
   */
  apply(host: string, meta: HostMetadata): boolean {
    try {
      lchownSync(fsPath(host), meta.uid, meta.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      if (!this.chownWarned) this.warn('not running as root: file owners are not preserved');
      this.chownWarned = true;
    }
    if (meta.type !== 'symlink') chmodSync(fsPath(host), meta.mode & 0o7777);
    for (const [name, value] of Object.entries(meta.xattrs)) {
      if (FORBIDDEN_XATTR.test(name)) {
        this.warn(`ignored xattr ${name} on ${JSON.stringify(meta.path)}: images may not set it`);
        continue;
      }
      try {
        setXattr(host, name, value);
      } catch (err) {
        this.warn(`could not set xattr ${name} on ${JSON.stringify(meta.path)}: ${describeError(err)}`);
      }
    }
    if (meta.type === 'dir') return true;
    setTimes(host, meta.atime, meta.mtime);
    return false;
  }
}

/** Applies layer tars onto a host directory without ever touching anything outside it. */
export class LayerApplier {
  private readonly rules: LayerRules<string>;

  constructor(
    readonly root: string,
    options: ApplierOptions,
  ) {
    this.rules = new LayerRules(new HostTree(root, options.warn), options.warn);
  }

  applyLayer(tar: AsyncIterable<Buffer | Uint8Array | string>, onEntry?: (entry: TarEntry) => void): Promise<ApplyStats> {
    return this.rules.applyLayer(tar, onEntry);
  }

  /** A layer replayed from its index, file bytes from `dataOf` (materialize -g). */
  applyEntries(entries: Iterable<TarEntry>, dataOf: (entry: TarEntry) => EntryData): Promise<ApplyStats> {
    return this.rules.applyEntries(entries, dataOf);
  }
}
