import { parentOf, sameRecord, sortChanges, type LayerChange, type LayerDiff } from './layer-diff.js';
import type { PathRecord, TreeRecord } from './tree-record.js';

/**
 * An overlayfs upper directory as recorded: every path's record (xattrs included, overlay's own
 * among them) and its inode/ctime identity (tree-record.ts).
 */
export interface UpperRecord {
  tree: TreeRecord;
  identities: Map<string, string>;
}

/** overlayfs keeps its own state in xattrs of this namespace (trusted.*; user.* for userxattr mounts, which krgo does not make). */
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';
const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** A deleted lower path: a character device 0/0 (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories"). */
function isWhiteout(record: PathRecord): boolean {
  return record.type === 'char' && record.rdev?.[0] === 0 && record.rdev?.[1] === 0;
}

/** A directory that hides whatever the lower layers hold at its path (created over a deleted path). */
function isOpaque(record: PathRecord | undefined): boolean {
  return record?.type === 'dir' && record.xattrs?.[OPAQUE_XATTR] !== undefined && Buffer.from(record.xattrs[OPAQUE_XATTR]!, 'base64').toString() === 'y';
}

/** The record as the image sees it: overlay's bookkeeping xattrs dropped. */
function imageRecord(record: PathRecord): PathRecord {
  if (!record.xattrs) return record;
  const kept = Object.entries(record.xattrs).filter(([name]) => !name.startsWith(OVERLAY_XATTR_PREFIX));
  const { xattrs: _all, ...rest } = record;
  return kept.length ? { ...rest, xattrs: Object.fromEntries(kept) } : rest;
}

function unchanged(path: string, now: UpperRecord, before: UpperRecord): boolean {
  const a = before.tree.get(path);
  const b = now.tree.get(path);
  // A whiteout says one thing (deleted), whatever its times and inode.
  if (a && b && isWhiteout(a) && isWhiteout(b)) return true;
  // overlayfs may set its own xattrs after the fact (impure, origin): they are no change to the image.
  if (!a || !b || !sameRecord(imageRecord(a), imageRecord(b))) return false;
  // Same metadata but written since (ctime moved, or another inode): the content changed.
  return b.type === 'dir' || before.identities.get(path) === now.identities.get(path);
}

/**
 * The layer that turns the tree an upper directory described at the last commit (`before`;
 * nothing for the first commit) into the tree it describes now, on top of the same lower layers:
 * - paths added or changed since (every field, content by identity) are entries, overlay's
 *   xattrs dropped; a whiteout (char 0/0) is a `.wh.` member;
 * - a directory that became opaque gets `.wh..wh..opq` and all that it holds now, since the
 *   marker hides what earlier commits put there too;
 * - a path the upper directory held and no longer does is whited out (overlayfs left no
 *   whiteout because nothing below it had that path: the earlier commit had);
 * - every name of a hardlinked file goes in when one does, so the group stays one file.
 * The root directory is never a member: its metadata in the upper directory is the upper
 * directory's own, not a change to the image.
 * Pure: the records come from `recordTree` of the upper directory.
 */
export function upperChanges(now: UpperRecord, before?: UpperRecord): LayerDiff {
  const previous: UpperRecord = before ?? { tree: new Map(), identities: new Map() };
  const changes: LayerChange[] = [];
  const skipped: string[] = [];
  const emitted = new Set<string>();
  // Directories whose whole content is restated (newly opaque): checked by prefix.
  const restated: string[] = [];
  const underRestated = (path: string) => restated.some((dir) => path.startsWith(`${dir}/`));

  const emit = (path: string, record: PathRecord) => {
    if (emitted.has(path)) return;
    emitted.add(path);
    if (record.type === 'socket') skipped.push(path);
    else if (isWhiteout(record)) {
      // Below a restated directory nothing is left to hide.
      if (!underRestated(path)) changes.push({ kind: 'whiteout', path });
    } else changes.push({ kind: 'entry', path, record: imageRecord(record) });
  };

  for (const [path, record] of now.tree) {
    if (path === '/') continue;
    const forced = underRestated(path);
    if (!forced && unchanged(path, now, previous) && isOpaque(record) === isOpaque(previous.tree.get(path))) continue;
    emit(path, record);
    if (isOpaque(record) && (forced || !isOpaque(previous.tree.get(path)))) {
      changes.push({ kind: 'opaque', path });
      restated.push(path);
    }
  }

  // Paths gone from the upper directory since the last commit: whited out, unless a parent's
  // own change (replaced, or newly opaque) already hides them.
  for (const [path, record] of previous.tree) {
    if (path === '/' || now.tree.has(path) || isWhiteout(record)) continue;
    const parent = parentOf(path);
    const stillDir = parent === '/' || (now.tree.get(parent)?.type === 'dir' && previous.tree.get(parent)?.type === 'dir');
    if (!stillDir || underRestated(path)) continue;
    changes.push({ kind: 'whiteout', path });
  }

  // Hardlink groups go in whole: the first name (linkedTo) and every other name.
  const groups = new Map<string, string[]>();
  for (const [path, record] of now.tree) {
    if (record.type !== 'file' || (record.nlink ?? 1) < 2) continue;
    const first = record.linkedTo ?? path;
    groups.set(first, [...(groups.get(first) ?? []), path]);
  }
  for (const members of groups.values()) {
    if (!members.some((path) => emitted.has(path))) continue;
    for (const path of members) emit(path, now.tree.get(path)!);
  }
  return { changes: sortChanges(changes), skipped };
}
