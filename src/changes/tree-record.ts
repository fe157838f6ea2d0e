import { lstat, readdir, readlink } from 'node:fs/promises';
import { lstatSync, readFileSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { EntryType } from '../tar/tar-entry.js';
import { nativeFs } from '../native/native-fs.js';
import { decodeName, fsPath } from '../tar/name-bytes.js';
import { limitConcurrency } from '../util/concurrency.js';

/**
 * What git drops and krgo keeps, per path of a layer branch: kind, every mode bit, owners,
 * nanosecond mtime, device numbers, xattrs, hardlink groups (and, for regular files, the size).
 * Paths are absolute inside the rootfs ('/' is the root itself).
 */
export interface PathRecord {
  type: Exclude<EntryType, 'hardlink'> | 'socket';
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, as a decimal string (beyond a double's precision). */
  mtime: string;
  size?: number;
  nlink?: number;
  link?: string;
  rdev?: [number, number];
  /** Name → base64 value. */
  xattrs?: Record<string, string>;
  /** For the second and later names of a hardlinked file: the first name (in sorted order). */
  linkedTo?: string;
}

export type TreeRecord = Map<string, PathRecord>;

function typeOf(st: BigIntStats): PathRecord['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** Linux's dev_t split (see makedev(3)). */
function deviceNumbers(rdev: bigint): [number, number] {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

function xattrsOf(host: string): Record<string, string> | undefined {
  const names = nativeFs.llistxattr(fsPath(host)).sort();
  if (names.length === 0) return undefined;
  return Object.fromEntries(names.map((name) => [name, nativeFs.lgetxattr(fsPath(host), name).toString('base64')]));
}

/** Whether ROOT/.git is krgo's pointer to the layer repository (layer-branches.ts), which is no part of the image. */
function isGitDirPointer(root: string): boolean {
  try {
    if (!lstatSync(join(root, '.git')).isFile()) return false;
    return /^gitdir: .*\.krgo\/git\n$/.test(readFileSync(join(root, '.git'), 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Walks a rootfs without following symlinks and records every path (krgo's /.git pointer aside).
 * `identities`, when given, gets each path's inode and change time: a file whose pair is the same
 * later was not written in between (ctime moves with every write, whatever mtime says).
 */
export async function recordTree(root: string, identities?: Map<string, string>): Promise<TreeRecord> {
  const found: [string, PathRecord, string | undefined][] = [];
  const limit = limitConcurrency(32);
  // The bound covers the system calls only: a directory never holds a slot while its children wait.
  const describe = async (path: string): Promise<{ record: PathRecord; inode?: string; names?: string[] }> => {
    const host = path === '/' ? root : root + path;
    const st = await lstat(fsPath(host), { bigint: true });
    const record: PathRecord = { type: typeOf(st), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: st.mtimeNs.toString() };
    identities?.set(path, `${st.ino}:${st.ctimeNs}`);
    let inode: string | undefined;
    if (record.type === 'file') {
      record.size = Number(st.size);
      record.nlink = Number(st.nlink);
      if (st.nlink > 1n) inode = `${st.dev}:${st.ino}`;
    }
    if (record.type === 'symlink') record.link = decodeName(await readlink(fsPath(host), { encoding: 'buffer' }));
    if (record.type === 'char' || record.type === 'block') record.rdev = deviceNumbers(st.rdev);
    const xattrs = xattrsOf(host);
    if (xattrs) record.xattrs = xattrs;
    // Names as bytes (tar/name-bytes.ts): a name that is not UTF-8 is still this very file.
    return { record, ...(inode ? { inode } : {}), ...(record.type === 'dir' ? { names: (await readdir(fsPath(host), { encoding: 'buffer' })).map(decodeName) } : {}) };
  };
  const visit = async (path: string): Promise<void> => {
    const { record, inode, names } = await limit(() => describe(path));
    found.push([path, record, inode]);
    const children = path === '/' && names && isGitDirPointer(root) ? names.filter((n) => n !== '.git') : names;
    if (children) await Promise.all(children.map((name) => visit(path === '/' ? `/${name}` : `${path}/${name}`)));
  };
  await visit('/');
  found.sort((a, b) => comparePaths(a[0], b[0]));
  const firstName = new Map<string, string>();
  const tree: TreeRecord = new Map();
  for (const [path, record, inode] of found) {
    if (inode) {
      const first = firstName.get(inode);
      if (first) record.linkedTo = first;
      else firstName.set(inode, path);
    }
    tree.set(path, record);
  }
  return tree;
}

/** Orders paths so that a directory comes right before its contents ('/a' < '/a/b' < '/a-b'). */
export function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i]! < pb[i]! ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** One JSON object per line, in path order: diffable with git and cheap to parse. */
export function encodeTreeRecord(tree: TreeRecord): string {
  let out = '';
  for (const [path, record] of tree) out += `${JSON.stringify({ path, ...record })}\n`;
  return out;
}

export function decodeTreeRecord(text: string): TreeRecord {
  const tree: TreeRecord = new Map();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const { path, ...record } = JSON.parse(line) as PathRecord & { path: string };
    tree.set(path, record);
  }
  return tree;
}
