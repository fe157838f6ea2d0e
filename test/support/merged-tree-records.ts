import { createHash } from 'node:crypto';
import type { MergedTree, ReadSpan } from '../../src/vfs/merged-tree.js';
import type { NodeRecord } from './tree-snapshot.js';

/** The merged tree in the snapshot format of a host tree; file bytes read through readPlan. */
/** `read` gives a file's bytes from its read plan; a Buffer[] of uncompressed layers will do. */
export function recordsOfMergedTree(tree: MergedTree, layers: Buffer[] | ((span: ReadSpan) => Buffer)): Map<string, NodeRecord> {
  const read = typeof layers === 'function' ? layers : (span: ReadSpan) => layers[span.layer]!.subarray(span.offset, span.offset + span.length);
  const records = new Map<string, NodeRecord>();
  const byIno = new Map<number, string[]>();
  for (const [path, inode] of tree.walk()) {
    const record: NodeRecord = { type: inode.type, mode: inode.mode.toString(8), uid: inode.uid, gid: inode.gid };
    if (inode.type === 'file') {
      record.size = inode.size;
      const span = tree.readPlan(inode, 0, inode.size);
      const bytes = span ? read(span) : Buffer.alloc(0);
      record.sha256 = createHash('sha256').update(bytes).digest('hex');
    }
    if (inode.type === 'symlink') record.link = inode.linkname;
    if (inode.type === 'char' || inode.type === 'block') record.rdev = `${inode.devmajor}:${inode.devminor}`;
    if (inode.type !== 'dir') record.mtime = (BigInt(inode.mtime.sec) * 1_000_000_000n + BigInt(inode.mtime.nsec)).toString();
    const user = Object.entries(inode.xattrs).filter(([k]) => k.startsWith('user.')).sort(([a], [b]) => (a < b ? -1 : 1));
    if (user.length) record.xattrs = user.map(([k, v]) => `${k}=0x${v.toString('hex')};`).join('');
    if (inode.type !== 'dir' && inode.nlink > 1) byIno.set(inode.ino, [...(byIno.get(inode.ino) ?? []), path]);
    records.set(path, record);
  }
  for (const group of byIno.values()) for (const path of group) records.get(path)!.hardlinks = group.filter((p) => p !== path).join(',');
  return records;
}

