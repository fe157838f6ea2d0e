import type { Inode, MergedTree } from './merged-tree.js';

/** Entries (files, directories, symlinks) one look along an order passes at most: a crafted tree of millions of symlinks costs a read no more. */
export const MAX_VISITED = 4096;

/** A regular file of the tree, at one of its paths. */
export interface PlacedFile {
  path: string;
  inode: Inode;
}

/**
 * The orders programs read a tree's files in, as the tree lists them (sorted, as a shell glob
 * sorts): a directory's own files (`cmd dir/*`), and a depth-first walk (`find`, `tar`, `cp -r`,
 * `grep -r`), which enters a subdirectory where its name sorts. Symlinks are not followed; empty
 * files (never read) are left out. Iterative (crafted layers nest deeper than the call stack
 * goes), and each look passes MAX_VISITED entries at most.
 */
export class TreeOrder {
  private readonly sorted = new WeakMap<Inode, string[]>();

  constructor(private readonly tree: MergedTree) {}

  /** The regular files after `path` in its directory. */
  *siblingsAfter(path: string): Generator<PlacedFile> {
    const cut = path.lastIndexOf('/');
    const dirPath = path.slice(0, cut);
    const dir = this.tree.lookup(dirPath || '/');
    if (dir?.type !== 'dir') return;
    const names = this.namesOf(dir);
    const start = after(names, path.slice(cut + 1));
    for (let i = start; i < names.length && i - start < MAX_VISITED; i++) {
      const inode = dir.children!.get(names[i]!)!.inode;
      if (isReadable(inode)) yield { path: `${dirPath}/${names[i]}`, inode };
    }
  }

  /** The regular files after `path` in a depth-first walk of the whole tree. */
  *walkAfter(path: string): Generator<PlacedFile> {
    const parts = path.split('/').filter((p) => p !== '');
    let visited = 0;
    // The rest of the file's directory (subdirectories walked as met), then its parent's rest, …
    for (let depth = parts.length - 1; depth >= 0; depth--) {
      const dirPath = depth === 0 ? '' : `/${parts.slice(0, depth).join('/')}`;
      const dir = this.tree.lookup(dirPath || '/');
      if (dir?.type !== 'dir') return;
      const names = this.namesOf(dir);
      for (let i = after(names, parts[depth]!); i < names.length; i++) {
        if (++visited > MAX_VISITED) return;
        const inode = dir.children!.get(names[i]!)!.inode;
        const childPath = `${dirPath}/${names[i]}`;
        if (inode.type !== 'dir') {
          if (isReadable(inode)) yield { path: childPath, inode };
          continue;
        }
        for (const [below, file] of this.tree.walk(inode, childPath, (d) => this.namesOf(d))) {
          if (++visited > MAX_VISITED) return;
          if (isReadable(file)) yield { path: below, inode: file };
        }
      }
    }
  }

  private namesOf(dir: Inode): string[] {
    let names = this.sorted.get(dir);
    if (!names) this.sorted.set(dir, (names = this.tree.readdir(dir)));
    return names;
  }
}

function isReadable(inode: Inode): boolean {
  return inode.type === 'file' && inode.size > 0;
}

/** Where the names after `name` start in sorted `names`. */
function after(names: readonly string[], name: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (names[mid]! <= name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
