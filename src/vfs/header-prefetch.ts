import { includedHeaders, includeSearchPath, MAX_HEADER_BYTES, type GccInstall } from './c-includes.js';
import { resolvePath } from './resolve-path.js';
import type { Inode, MergedTree } from './merged-tree.js';

/** Bounds on what one mount follows: nesting, files, and their bytes (`<iostream>`'s walk: 262 files, 3 MB). */
const MAX_DEPTH = 64;
const MAX_FILES = 8000;
const MAX_BYTES = 64 * 1024 * 1024;

interface Found {
  path: string;
  inode: Inode;
}

/**
 * When a C or C++ header under a compiler's search path is first read, the headers it includes
 * are fetched at once, and theirs in turn as their bytes arrive: a compiler parsing `<iostream>`
 * waits one round trip per level of nesting (15 for GCC 12's) instead of one per header (182 of
 * them, each read only once the one including it was parsed). A name is looked for in every
 * directory of the search path (and beside a quoting file first), and every match is fetched:
 * libstdc++'s `<stdlib.h>` wraps the C library's, which it reaches with `#include_next`. The
 * search path is C++'s when the first header of a walk is a libstdc++ one. A hint only:
 * failures are ignored and reads never wait for it.
 */
export class HeaderPrefetcher {
  private readonly seen = new Set<number>();
  private bytes = 0;
  private paths: { c: string[]; cxx: string[] } | undefined;

  constructor(
    private readonly tree: MergedTree,
    private readonly read: (inode: Inode, offset: number, length: number) => Promise<Buffer>,
    /** Fetches headers found ahead, as one batch. */
    private readonly fetch: (inodes: Inode[]) => void,
  ) {}

  opened(inode: Inode, path: string): void {
    if (inode.type !== 'file' || inode.size > MAX_HEADER_BYTES || this.seen.has(inode.ino)) return;
    const { c, cxx } = this.searchPaths();
    const isCxx = cxx.some((dir) => !c.includes(dir) && path.startsWith(`${dir}/`));
    if (!isCxx && !c.some((dir) => path.startsWith(`${dir}/`))) return;
    this.seen.add(inode.ino);
    this.follow({ path, inode }, isCxx ? cxx : c, 0).catch(() => undefined);
  }

  private async follow(header: Found, searchPath: readonly string[], depth: number): Promise<void> {
    if (depth > MAX_DEPTH || header.inode.size > MAX_HEADER_BYTES) return;
    const source = (await this.read(header.inode, 0, header.inode.size)).toString('latin1');
    const here = header.path.slice(0, header.path.lastIndexOf('/'));
    const batch: Found[] = [];
    for (const { name, quoted } of includedHeaders(source)) {
      for (const dir of quoted ? [here, ...searchPath] : searchPath) {
        const path = `${dir}/${name}`;
        const inode = resolvePath(this.tree, path);
        if (inode?.type !== 'file' || this.seen.has(inode.ino) || this.seen.size >= MAX_FILES || this.bytes + inode.size > MAX_BYTES) continue;
        this.seen.add(inode.ino);
        this.bytes += inode.size;
        batch.push({ path, inode });
      }
    }
    if (batch.length === 0) return;
    this.fetch(batch.map((found) => found.inode));
    await Promise.all(batch.map((found) => this.follow(found, searchPath, depth + 1).catch(() => undefined)));
  }

  /** The C and C++ search paths of the GCC installations in the tree, found once (it does not change). */
  private searchPaths(): { c: string[]; cxx: string[] } {
    if (!this.paths) {
      const installs = this.gccInstalls();
      this.paths = { c: includeSearchPath(installs, false), cxx: includeSearchPath(installs, true) };
    }
    return this.paths;
  }

  /** /usr/lib/gcc/TRIPLET/VERSION directories that have an include directory. */
  private gccInstalls(): GccInstall[] {
    const installs: GccInstall[] = [];
    const gcc = resolvePath(this.tree, '/usr/lib/gcc');
    for (const triplet of gcc?.type === 'dir' ? this.tree.readdir(gcc) : []) {
      const dir = resolvePath(this.tree, `/usr/lib/gcc/${triplet}`);
      for (const version of dir?.type === 'dir' ? this.tree.readdir(dir) : []) {
        if (resolvePath(this.tree, `/usr/lib/gcc/${triplet}/${version}/include`)?.type === 'dir') installs.push({ triplet, version });
      }
    }
    return installs;
  }
}
