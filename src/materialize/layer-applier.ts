import { chmodSync, closeSync, linkSync, lchownSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, writeSync, constants } from 'node:fs';
import { KrgoError, describeError } from '../errors.js';
import { parseTar } from '../tar/tar-parser.js';
import type { TarEntry } from '../tar/tar-entry.js';
import type { EntryData } from '../tar/tar-parser.js';
import { normalizeEntryPath, whiteoutOf } from '../tar/entry-path.js';
import { resolveDirInRoot } from './scoped-path.js';
import { makeNode, setTimes, setXattr } from './special-files.js';

type Time = { sec: number; nsec: number };

export interface ApplyStats {
  entries: number;
  skipped: number;
  bytes: number;
}

export interface ApplierOptions {
  /** Told about every entry skipped for safety or validity. */
  warn: (message: string) => void;
}

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Xattrs an image must never set on the host: overlayfs internals would be trusted by the kernel. */
const FORBIDDEN_XATTR = /^trusted\.overlay\./;

/**
 * Applies layer tars onto a directory with the OCI rules (whiteouts, opaque directories,
 * directory merge, replacement of everything else) without ever touching anything outside it.
 */
export class LayerApplier {
  private upperPaths = new Set<string>();
  private upperAncestors = new Set<string>();
  private dirTimes = new Map<string, { atime: Time; mtime: Time }>();
  private chownWarned = false;

  constructor(
    readonly root: string,
    private readonly options: ApplierOptions,
  ) {}

  async applyLayer(tar: AsyncIterable<Buffer | Uint8Array | string>): Promise<ApplyStats> {
    this.upperPaths = new Set();
    this.upperAncestors = new Set();
    this.dirTimes = new Map();
    const stats: ApplyStats = { entries: 0, skipped: 0, bytes: 0 };
    await parseTar(
      tar,
      async (entry, data) => {
        try {
          const applied = await this.applyEntry(entry, data);
          if (applied) {
            stats.entries++;
            stats.bytes += entry.size;
          } else stats.skipped++;
        } catch (err) {
          if (!(err instanceof KrgoError && err.code === 'UNSAFE_PATH')) throw err;
          stats.skipped++;
          this.options.warn(`skipped ${JSON.stringify(entry.path)}: ${err.message}`);
        }
      },
      { warn: this.options.warn },
    );
    // Directory times last, deepest first, once their children are in place.
    const dirs = [...this.dirTimes.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [host, t] of dirs) {
      // A later entry of the same layer may have removed the directory.
      if (lstatSync(host, { throwIfNoEntry: false })?.isDirectory()) setTimes(host, t.atime, t.mtime);
    }
    return stats;
  }

  private skip(entry: TarEntry, why: string): false {
    this.options.warn(`skipped ${JSON.stringify(entry.path)}: ${why}`);
    return false;
  }

  private markUpper(host: string): void {
    this.upperPaths.add(host);
    for (let i = host.lastIndexOf('/'); i > this.root.length; i = host.lastIndexOf('/', i - 1)) {
      const ancestor = host.slice(0, i);
      if (this.upperAncestors.has(ancestor)) break;
      this.upperAncestors.add(ancestor);
    }
  }

  private async applyEntry(entry: TarEntry, data: EntryData): Promise<boolean> {
    const parts = normalizeEntryPath(entry.path);
    if (!parts) return this.skip(entry, 'its path climbs out of the root');
    if (parts.length === 0) {
      if (entry.type !== 'dir') return this.skip(entry, 'only a directory can stand for the root');
      this.applyMetadata(this.root, entry);
      return true;
    }
    const base = parts[parts.length - 1]!;
    const parentParts = parts.slice(0, -1);
    const whiteout = whiteoutOf(base);
    if (whiteout.kind === 'invalid') return this.skip(entry, 'invalid whiteout name');
    if (whiteout.kind !== 'none') {
      const parent = resolveDirInRoot(this.root, parentParts, false);
      if (!parent) return true;
      if (whiteout.kind === 'opaque') this.clearLower(parent.host);
      else rmSync(`${parent.host}/${whiteout.name}`, { recursive: true, force: true });
      return true;
    }

    // Resolve a hardlink's target before anything at the new path is removed.
    let linkTarget: string | undefined;
    if (entry.type === 'hardlink') {
      const targetParts = normalizeEntryPath(entry.linkname);
      if (!targetParts || targetParts.length === 0) return this.skip(entry, `hardlink target ${JSON.stringify(entry.linkname)} is outside the root`);
      const targetDir = resolveDirInRoot(this.root, targetParts.slice(0, -1), false);
      linkTarget = targetDir && `${targetDir.host}/${targetParts[targetParts.length - 1]}`;
      const st = linkTarget ? lstatSync(linkTarget, { throwIfNoEntry: false }) : undefined;
      if (!linkTarget || !st) return this.skip(entry, `hardlink target ${JSON.stringify(entry.linkname)} does not exist`);
      if (st.isDirectory()) return this.skip(entry, 'hardlinks to directories are not allowed');
    }

    const parent = resolveDirInRoot(this.root, parentParts, true, (host) => this.markUpper(host));
    const host = `${parent!.host}/${base}`;
    if (linkTarget === host) return true; // a link to itself leaves the file as it is
    const existing = lstatSync(host, { throwIfNoEntry: false });
    if (existing && !(existing.isDirectory() && entry.type === 'dir')) rmSync(host, { recursive: true, force: true });
    this.markUpper(host);

    switch (entry.type) {
      case 'file': {
        const fd = openSync(host, CREATE_FLAGS, 0o600);
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
        if (!existing?.isDirectory()) mkdirSync(host, 0o700);
        break;
      case 'symlink':
        symlinkSync(entry.linkname, host);
        break;
      case 'hardlink':
        linkSync(linkTarget!, host);
        return true; // the link shares the target's inode and metadata
      case 'char':
      case 'block':
      case 'fifo':
        makeNode(host, entry.type, entry.devmajor, entry.devminor);
        break;
    }
    this.applyMetadata(host, entry);
    return true;
  }

  /** Owner, then mode (chown clears setuid), then xattrs, then times (directories at the end). */
  private applyMetadata(host: string, entry: TarEntry): void {
    try {
      lchownSync(host, entry.uid, entry.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      if (!this.chownWarned) this.options.warn('not running as root: file owners are not preserved');
      this.chownWarned = true;
    }
    if (entry.type !== 'symlink') chmodSync(host, entry.mode & 0o7777);
    for (const [name, value] of Object.entries(entry.xattrs)) {
      if (FORBIDDEN_XATTR.test(name)) {
        this.options.warn(`ignored xattr ${name} on ${JSON.stringify(entry.path)}: images may not set it`);
        continue;
      }
      try {
        setXattr(host, name, value);
      } catch (err) {
        this.options.warn(`could not set xattr ${name} on ${JSON.stringify(entry.path)}: ${describeError(err)}`);
      }
    }
    const mtime = { sec: entry.mtime, nsec: entry.mtimeNsec };
    const atime = entry.atime !== undefined ? { sec: entry.atime, nsec: entry.atimeNsec ?? 0 } : mtime;
    if (entry.type === 'dir') this.dirTimes.set(host, { atime, mtime });
    else setTimes(host, atime, mtime);
  }

  /** Opaque whiteout: hides everything below `dir` that this layer did not put there. */
  private clearLower(dir: string): void {
    for (const child of readdirSync(dir, { withFileTypes: true })) {
      const host = `${dir}/${child.name}`;
      const keepsUpper = this.upperAncestors.has(host) || (this.upperPaths.has(host) && child.isDirectory());
      if (keepsUpper) this.clearLower(host);
      else if (!this.upperPaths.has(host)) rmSync(host, { recursive: true, force: true });
    }
  }
}
