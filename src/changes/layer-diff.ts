import { comparePaths, type PathRecord, type TreeRecord } from './tree-record.js';

/** One member of a new layer: an entry to write, a whiteout, or an opaque-directory marker. */
export type LayerChange =
  | { kind: 'entry'; path: string; record: PathRecord }
  | { kind: 'whiteout'; path: string }
  | { kind: 'opaque'; path: string };

export interface LayerDiff {
  changes: LayerChange[];
  /** Paths that cannot go in a layer (sockets), left out. */
  skipped: string[];
}

export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

export function sameRecord(a: PathRecord, b: PathRecord): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.mtime === b.mtime &&
    a.size === b.size &&
    a.nlink === b.nlink &&
    a.link === b.link &&
    a.linkedTo === b.linkedTo &&
    JSON.stringify(a.rdev) === JSON.stringify(b.rdev) &&
    JSON.stringify(a.xattrs ?? {}) === JSON.stringify(b.xattrs ?? {})
  );
}

/**
 * The layer that turns the tree `before` into `after`: every path added or changed in any way
 * (content as git saw it, or any metadata), whiteouts for removed paths, and an opaque marker
 * instead of one whiteout per child when a directory lost all of its (two or more) entries: it
 * was emptied or replaced, and one marker says so whatever it held.
 * Pure: both trees come from `recordTree`, the content changes from `git diff`.
 */
export function diffTrees(before: TreeRecord, after: TreeRecord, contentChanged: ReadonlySet<string>): LayerDiff {
  const changes: LayerChange[] = [];
  const skipped: string[] = [];
  for (const [path, record] of after) {
    const old = before.get(path);
    if (old && sameRecord(old, record) && !contentChanged.has(path)) continue;
    if (record.type === 'socket') skipped.push(path);
    else changes.push({ kind: 'entry', path, record });
  }

  // Removed paths, grouped by a parent that stays a directory (below a removed or replaced
  // parent nothing needs saying: the parent's own change hides it).
  const removedByParent = new Map<string, string[]>();
  for (const path of before.keys()) {
    if (path === '/' || after.has(path)) continue;
    const parent = parentOf(path);
    if (before.get(parent)?.type !== 'dir' || after.get(parent)?.type !== 'dir') continue;
    const list = removedByParent.get(parent) ?? [];
    list.push(path);
    removedByParent.set(parent, list);
  }
  const childCount = new Map<string, number>();
  for (const path of before.keys()) if (path !== '/') childCount.set(parentOf(path), (childCount.get(parentOf(path)) ?? 0) + 1);
  for (const [parent, removed] of removedByParent) {
    if (removed.length > 1 && removed.length === childCount.get(parent)) changes.push({ kind: 'opaque', path: parent });
    else for (const path of removed) changes.push({ kind: 'whiteout', path });
  }

  return { changes: sortChanges(changes), skipped };
}

/** Layer members in path order: a directory's entry, then its opaque marker and whiteouts, then its children. */
export function sortChanges(changes: LayerChange[]): LayerChange[] {
  const sortKey = (c: LayerChange): string => (c.kind === 'entry' && c.path === '/' ? '/' : `/${memberName(c).replace(/\/$/, '')}`);
  return changes.sort((a, b) => comparePaths(sortKey(a), sortKey(b)));
}

/** The tar member name of a change: relative, directories with a trailing slash. */
export function memberName(change: LayerChange): string {
  const rel = (path: string) => (path === '/' ? '.' : path.slice(1));
  switch (change.kind) {
    case 'entry':
      return change.record.type === 'dir' ? `${rel(change.path)}/` : rel(change.path);
    case 'opaque':
      return change.path === '/' ? '.wh..wh..opq' : `${rel(change.path)}/.wh..wh..opq`;
    case 'whiteout': {
      const parent = parentOf(change.path);
      const name = change.path.slice(change.path.lastIndexOf('/') + 1);
      return parent === '/' ? `.wh.${name}` : `${rel(parent)}/.wh.${name}`;
    }
  }
}
