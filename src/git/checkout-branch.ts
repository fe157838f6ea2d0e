import { chmodSync, copyFileSync, linkSync, lchownSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { KrgoError } from '../errors.js';
import { makeNode, removeXattr, setTimes, setXattr, splitNanoseconds } from '../hostfs/special-files.js';
import { nativeFs } from '../native/native-fs.js';
import { fsPath } from '../tar/name-bytes.js';
import { comparePaths, recordTree, type PathRecord } from '../changes/tree-record.js';
import { LayerRepo } from './layer-state.js';

export interface CheckoutResult {
  branch: string;
  /** Paths whose kind, owner, mode, xattrs, times or links git could not restore. */
  fixed: number;
}

/** Gives a hardlinked name its own inode with the same bytes (a copy renamed over it). */
function unshareFile(host: string): void {
  const copy = `${host}.krgo-unshare`;
  copyFileSync(fsPath(host), fsPath(copy));
  renameSync(fsPath(copy), fsPath(host));
}

/** Everything but content and times: git restored the content, times go last. */
function sameShape(a: PathRecord, b: PathRecord): boolean {
  return a.type === b.type && a.link === b.link && JSON.stringify(a.rdev) === JSON.stringify(b.rdev) && a.linkedTo === b.linkedTo;
}

/**
 * `krgo checkout`: a layer branch restored exactly. git brings back contents, symlinks and the
 * exec bit; the branch's record brings back the rest: empty directories, devices and fifos,
 * hardlinks, owners, every mode bit, xattrs and nanosecond times. Paths the record does not
 * know (left by the previous branch: empty directories, devices) are removed.
 */
export async function checkoutBranch(rootfs: string, branch: string): Promise<CheckoutResult> {
  const layers = await LayerRepo.open(rootfs);
  const layer = layers.state.layers.find((l) => l.branch === branch || l.branch.startsWith(`layer_${branch}_`));
  if (!layer) throw new KrgoError('GIT_STATE', `${branch} is not a layer branch of ${layers.rootfs} (${layers.state.layers.map((l) => l.branch.slice(0, 20)).join(', ')})`);
  const root = layers.rootfs;
  if (!(await layers.repo.isClean())) {
    throw new KrgoError('GIT_STATE', `${root} has changes no branch holds; commit them with \`krgo commit\` (on the top layer) or discard them before a checkout`);
  }
  await layers.repo.checkout(layer.branch);
  const [want, have] = await Promise.all([layers.record(layer.index), recordTree(root)]);
  let fixed = 0;

  // Paths the branch does not have, deepest first.
  for (const path of [...have.keys()].sort((a, b) => comparePaths(b, a))) {
    if (path !== '/' && !want.has(path)) {
      rmSync(fsPath(root + path), { recursive: true, force: true });
      fixed++;
    }
  }
  for (const [path, record] of want) {
    const host = path === '/' ? root : root + path;
    const current = have.get(path);
    if (current && sameShape(current, record)) continue;
    fixed++;
    if (current?.type === 'file' && record.type === 'file' && !record.linkedTo) {
      // A name leaving a hardlink group with the bytes it had: git saw no change and left the
      // shared inode; it gets one of its own (the content is right, git checked it out).
      unshareFile(host);
      continue;
    }
    if (current && path !== '/') rmSync(fsPath(host), { recursive: true, force: true });
    if (record.linkedTo) linkSync(fsPath(root + record.linkedTo), fsPath(host));
    else if (record.type === 'dir') mkdirSync(fsPath(host), { recursive: true });
    else if (record.type === 'char' || record.type === 'block' || record.type === 'fifo') makeNode(host, record.type, record.rdev?.[0] ?? 0, record.rdev?.[1] ?? 0);
    else if (!current || current.type !== record.type) {
      throw new KrgoError('GIT_STATE', `${path} (${record.type}) is missing after git checkout ${layer.branch}; is the repository complete?`);
    }
  }

  // Owners, modes (after chown, which clears setuid), xattrs; then times, directories last and deepest first.
  for (const [path, record] of want) {
    if (record.linkedTo || record.type === 'socket') continue;
    const host = path === '/' ? root : root + path;
    lchownSync(fsPath(host), record.uid, record.gid);
    if (record.type !== 'symlink') chmodSync(fsPath(host), record.mode);
    const wanted = record.xattrs ?? {};
    for (const name of nativeFs.llistxattr(fsPath(host))) if (!(name in wanted)) removeXattr(host, name);
    for (const [name, value] of Object.entries(wanted)) setXattr(host, name, Buffer.from(value, 'base64'));
  }
  const dirs: [string, PathRecord][] = [];
  for (const [path, record] of want) {
    if (record.type === 'dir') dirs.push([path, record]);
    else if (!record.linkedTo) setTimes(root + path, splitNanoseconds(record.mtime), splitNanoseconds(record.mtime));
  }
  for (const [path, record] of dirs.reverse()) setTimes(path === '/' ? root : root + path, splitNanoseconds(record.mtime), splitNanoseconds(record.mtime));
  return { branch: layer.branch, fixed };
}
