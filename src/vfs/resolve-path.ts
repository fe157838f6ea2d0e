import { isKrgoError } from '../errors.js';
import { resolveDir } from '../layers/layer-rules.js';
import type { Inode, MergedTree } from './merged-tree.js';

const MAX_HOPS = 16;

/**
 * The inode a path names inside the tree, symlinks followed as a chroot would (never out of it);
 * undefined when nothing is there, also when the path runs through a file or a symlink loop
 * (paths come from access profiles, which anyone who can push may write).
 */
export function resolvePath(tree: MergedTree, path: string): Inode | undefined {
  try {
    return resolveInside(tree, path);
  } catch (err) {
    if (isKrgoError(err, 'UNSAFE_PATH')) return undefined;
    throw err;
  }
}

function resolveInside(tree: MergedTree, path: string): Inode | undefined {
  let parts = path.split('/').filter((p) => p !== '' && p !== '.');
  for (let hops = 0; hops < MAX_HOPS && parts.length > 0; hops++) {
    const dir = resolveDir(tree, parts.slice(0, -1), false);
    const node = dir && tree.child(dir.node, parts[parts.length - 1]!);
    if (!node) return undefined;
    const target = tree.symlinkTarget(node);
    if (target === undefined) return node.inode;
    // A relative target is relative to the link's directory, which parts.slice(0, -1) names.
    parts = [...(target.startsWith('/') ? [] : parts.slice(0, -1)), ...target.split('/').filter((p) => p !== '' && p !== '.')];
  }
  return undefined;
}
