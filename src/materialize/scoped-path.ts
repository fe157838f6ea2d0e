import { lstatSync, mkdirSync, chmodSync, readlinkSync } from 'node:fs';
import { KrgoError } from '../errors.js';

const MAX_SYMLINK_HOPS = 40;

export interface ScopedDir {
  /** Host path of the directory, always inside the root. */
  host: string;
}

/**
 * Resolves directory components inside `root` as a chroot would: symlinks met on the way are
 * followed, but `..` and absolute targets stop at the root, so nothing outside can be reached.
 * Missing directories are created (0755) when `create` is set, else undefined is returned.
 */
export function resolveDirInRoot(
  root: string,
  parts: readonly string[],
  create: boolean,
  onCreate?: (host: string) => void,
): ScopedDir | undefined {
  const stack: string[] = [];
  const queue = [...parts];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      stack.pop();
      continue;
    }
    const host = `${root}/${[...stack, part].join('/')}`;
    const st = lstatSync(host, { throwIfNoEntry: false });
    if (!st) {
      if (!create) return undefined;
      mkdirSync(host, 0o755);
      chmodSync(host, 0o755);
      onCreate?.(host);
      stack.push(part);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new KrgoError('UNSAFE_PATH', `too many levels of symbolic links at ${host.slice(root.length) || '/'}`);
      const target = readlinkSync(host);
      if (target.startsWith('/')) stack.length = 0;
      queue.unshift(...target.split('/'));
      continue;
    }
    if (!st.isDirectory()) throw new KrgoError('UNSAFE_PATH', `/${[...stack, part].join('/')} is not a directory`);
    stack.push(part);
  }
  return { host: stack.length ? `${root}/${stack.join('/')}` : root };
}
