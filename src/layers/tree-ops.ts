import type { TarEntry } from '../tar/tar-entry.js';
import type { EntryData } from '../tar/tar-parser.js';

/**
 * What the layer rules need from a tree: a host directory (eager pull) or an in-memory tree
 * (lazy mount). Nodes are looked up without following symlinks; the rules engine does all path
 * resolution, so both trees agree on every case.
 */
export interface TreeOps<N> {
  readonly root: N;
  /** The child called `name`, not following a symlink (lstat). */
  child(dir: N, name: string): N | undefined;
  isDir(node: N): boolean;
  /** The link text when `node` is a symlink. */
  symlinkTarget(node: N): string | undefined;
  /** A directory the layer did not describe but needs (a parent of one of its entries). */
  makeImplicitDir(dir: N, name: string): N;
  /** Removes `name` and everything below it. */
  remove(dir: N, name: string): void;
  childNames(dir: N): string[];
  /**
   * Creates the entry at `dir/name` (anything there before has been removed, except a
   * directory merged with a directory entry, passed as `existingDir`). Hardlinks get their
   * resolved target. Returns the node now at that name (directly when nothing is written: a
   * tree in memory).
   */
  create(dir: N, name: string, entry: TarEntry, data: EntryData, existingDir: N | undefined, linkTarget: N | undefined): N | Promise<N>;
  /** Metadata for the root directory itself (a `./` entry). */
  updateRoot(entry: TarEntry): void;
  /** Called once a layer's entries are all applied (directory times go last). */
  finishLayer(): void;
}
