import { KrgoError } from '../errors.js';
import { parseTar, type EntryData } from '../tar/tar-parser.js';
import type { TarEntry } from '../tar/tar-entry.js';
import { entryNameProblem, entryPlace, normalizeEntryPath, parentParts, whiteoutOf, type EntryPlace } from '../tar/entry-path.js';
import type { TreeOps } from './tree-ops.js';

const MAX_SYMLINK_HOPS = 40;
/** Warnings per layer before the rest are only counted: a crafted layer can hold millions of bad entries. */
const MAX_WARNINGS_PER_LAYER = 50;
const MAX_PATH_IN_MESSAGE = 160;
/** Directories held by the resolved parents a layer reuses (a debootstrap layer: ~4,000). */
const MAX_PARENTS_HELD = 65_536;

/** An entry's path as a message shows it: quoted, and cut when a crafted one is huge. */
export function describeEntryPath(path: string): string {
  return JSON.stringify(path.length > MAX_PATH_IN_MESSAGE ? `${path.slice(0, MAX_PATH_IN_MESSAGE)}…` : path);
}

/** Entries replayed from an index carry no bytes; trees built from indexes read none. */
const NO_DATA: EntryData = {
  async *chunks() {
    // nothing
  },
};

export interface ApplyStats {
  entries: number;
  skipped: number;
  bytes: number;
}

interface Resolved<N> {
  node: N;
  /** Directories from the root down to `node`, as resolved (after symlinks). */
  chain: N[];
}

/**
 * Resolves directory components as a chroot would: symlinks met on the way are followed, but
 * `..` and absolute targets stop at the root, so nothing outside the tree can be reached.
 * Missing directories are made when `create` is set, else undefined is returned.
 */
export function resolveDir<N>(ops: TreeOps<N>, parts: readonly string[], create: boolean, onCreate?: (node: N) => void): Resolved<N> | undefined {
  const chain: N[] = [ops.root];
  const names: string[] = [];
  const queue = [...parts];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (chain.length > 1) {
        chain.pop();
        names.pop();
      }
      continue;
    }
    const dir = chain[chain.length - 1]!;
    let node = ops.child(dir, part);
    if (node === undefined) {
      if (!create) return undefined;
      node = ops.makeImplicitDir(dir, part);
      onCreate?.(node);
    } else {
      const target = ops.symlinkTarget(node);
      if (target !== undefined) {
        if (++hops > MAX_SYMLINK_HOPS) throw new KrgoError('UNSAFE_PATH', 'too many levels of symbolic links');
        if (target.startsWith('/')) {
          chain.length = 1;
          names.length = 0;
        }
        queue.unshift(...target.split('/'));
        continue;
      }
      if (!ops.isDir(node)) throw new KrgoError('UNSAFE_PATH', `${describeEntryPath(`/${[...names, part].join('/')}`)} is not a directory`);
    }
    chain.push(node);
    names.push(part);
  }
  return { node: chain[chain.length - 1]!, chain };
}

/**
 * The OCI layer rules, one engine for every tree: whiteouts and opaque directories (which
 * hide lower layers only, wherever the marker sits in the tar), directory merge, replacement of
 * everything else, hardlinks resolved inside the tree. Unsafe entries are skipped with a warning.
 */
export class LayerRules<N> {
  private upper = new Set<N>();
  private upperAncestors = new Set<N>();
  private warnings = 0;
  /**
   * The directories entries of this layer were created in, by path: a tar lists a directory's
   * entries together, and comes back to it after each subdirectory. Their chains are marked
   * upper already. Only a removal can change what a path resolves to (a name that resolved is
   * never made anew without one), so every removal drops them all. Bounded: a crafted layer's
   * deep directories would otherwise hold a chain each.
   */
  private readonly parents = new Map<string, Resolved<N>>();
  /** The directories the chains in `parents` hold, together. */
  private parentsHeld = 0;

  constructor(
    private readonly ops: TreeOps<N>,
    private readonly report: (message: string) => void,
  ) {}

  private readonly warn = (message: string): void => {
    if (++this.warnings <= MAX_WARNINGS_PER_LAYER) this.report(message);
  };

  private finishWarnings(): void {
    if (this.warnings > MAX_WARNINGS_PER_LAYER) this.report(`${this.warnings - MAX_WARNINGS_PER_LAYER} more warnings for this layer not shown`);
    this.warnings = 0;
  }

  /** Applies a layer given as its uncompressed tar stream; `onEntry` sees every member (for an index). */
  async applyLayer(tar: AsyncIterable<Buffer | Uint8Array | string>, onEntry?: (entry: TarEntry) => void): Promise<ApplyStats> {
    const stats = this.startLayer();
    await parseTar(
      tar,
      (entry, data) => {
        onEntry?.({ ...entry, xattrs: { ...entry.xattrs } });
        return this.applyCounted(entry, data, stats);
      },
      { warn: this.warn },
    );
    this.finishLayer();
    return stats;
  }

  /** Applies a layer replayed from its index: the entries, with their bytes from `dataOf` (else none). */
  async applyEntries(entries: Iterable<TarEntry>, dataOf?: (entry: TarEntry) => EntryData): Promise<ApplyStats> {
    const stats = this.startLayer();
    for (const entry of entries) {
      const pending = this.applyCounted(entry, dataOf && entry.type === 'file' ? dataOf(entry) : NO_DATA, stats);
      if (pending) await pending;
    }
    this.finishLayer();
    return stats;
  }

  private finishLayer(): void {
    this.ops.finishLayer();
    this.finishWarnings();
  }

  private startLayer(): ApplyStats {
    this.upper = new Set();
    this.upperAncestors = new Set();
    this.forgetParents();
    return { entries: 0, skipped: 0, bytes: 0 };
  }

  /**
   * Applies one entry and counts it; an unsafe one is skipped with a warning. Synchronous when
   * the tree creates synchronously (the in-memory tree): a mount replays thousands of entries
   * before it is ready, and a promise per entry costs as much as the rest of the work.
   */
  private applyCounted(entry: TarEntry, data: EntryData, stats: ApplyStats): Promise<void> | undefined {
    let outcome: boolean | Promise<boolean>;
    try {
      outcome = this.applyEntry(entry, data);
    } catch (err) {
      this.countFailure(entry, err, stats);
      return undefined;
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (applied) => this.count(entry, applied, stats),
        (err: unknown) => this.countFailure(entry, err, stats),
      );
    }
    this.count(entry, outcome, stats);
    return undefined;
  }

  private count(entry: TarEntry, applied: boolean, stats: ApplyStats): void {
    if (applied) {
      stats.entries++;
      stats.bytes += entry.size;
    } else stats.skipped++;
  }

  private countFailure(entry: TarEntry, err: unknown, stats: ApplyStats): void {
    // A host path longer than the kernel takes (the root's own length counts there) is skipped like an unsafe one.
    const tooLong = (err as NodeJS.ErrnoException).code === 'ENAMETOOLONG';
    if (!tooLong && !(err instanceof KrgoError && err.code === 'UNSAFE_PATH')) throw err;
    stats.skipped++;
    this.warn(`skipped ${describeEntryPath(entry.path)}: ${tooLong ? 'its path is too long for the host file system' : (err as Error).message}`);
  }

  private skip(entry: TarEntry, why: string): false {
    this.warn(`skipped ${describeEntryPath(entry.path)}: ${why}`);
    return false;
  }

  private remove(dir: N, name: string): void {
    this.forgetParents();
    this.ops.remove(dir, name);
  }

  private forgetParents(): void {
    this.parents.clear();
    this.parentsHeld = 0;
  }

  /** The directory an entry goes in, made (and marked upper) when missing. */
  private parentFor(place: EntryPlace): Resolved<N> {
    const key = place.parent;
    const known = this.parents.get(key);
    if (known) return known;
    const created: N[] = [];
    const resolved = resolveDir(this.ops, parentParts(place), true, (node) => created.push(node))!;
    for (const node of created) this.upper.add(node);
    for (const ancestor of resolved.chain) this.upperAncestors.add(ancestor);
    if (this.parentsHeld + resolved.chain.length > MAX_PARENTS_HELD) this.forgetParents();
    this.parents.set(key, resolved);
    this.parentsHeld += resolved.chain.length;
    return resolved;
  }

  private applyEntry(entry: TarEntry, data: EntryData): boolean | Promise<boolean> {
    const problem = entryNameProblem(entry.path, entry.type === 'symlink' || entry.type === 'hardlink' ? entry.linkname : '');
    if (problem) return this.skip(entry, problem);
    const place = entryPlace(entry.path);
    if (!place) return this.skip(entry, 'its path climbs out of the root');
    if (place.name === '') {
      if (entry.type !== 'dir') return this.skip(entry, 'only a directory can stand for the root');
      this.ops.updateRoot(entry);
      return true;
    }
    const { name } = place;
    const whiteout = whiteoutOf(name);
    if (whiteout.kind === 'invalid') return this.skip(entry, 'invalid whiteout name');
    if (whiteout.kind !== 'none') {
      const parent = resolveDir(this.ops, parentParts(place), false);
      if (!parent) return true;
      if (whiteout.kind === 'opaque') this.clearLower(parent.node);
      else this.whiteOut(parent.node, whiteout.name);
      return true;
    }

    // A hardlink's target is resolved before anything at the new name is removed.
    let linkTarget: N | undefined;
    if (entry.type === 'hardlink') {
      const targetParts = normalizeEntryPath(entry.linkname);
      if (!targetParts || targetParts.length === 0) return this.skip(entry, `hardlink target ${JSON.stringify(entry.linkname)} is outside the root`);
      const targetDir = resolveDir(this.ops, targetParts.slice(0, -1), false);
      linkTarget = targetDir && this.ops.child(targetDir.node, targetParts[targetParts.length - 1]!);
      if (linkTarget === undefined) return this.skip(entry, `hardlink target ${JSON.stringify(entry.linkname)} does not exist`);
      if (this.ops.isDir(linkTarget)) return this.skip(entry, 'hardlinks to directories are not allowed');
    }

    const parent = this.parentFor(place);
    const existing = this.ops.child(parent.node, name);
    if (linkTarget !== undefined && existing === linkTarget) return true; // a link to itself changes nothing
    const mergeDir = existing !== undefined && entry.type === 'dir' && this.ops.isDir(existing) ? existing : undefined;
    if (existing !== undefined && mergeDir === undefined) this.remove(parent.node, name);
    const made = this.ops.create(parent.node, name, entry, data, mergeDir, linkTarget);
    if (made instanceof Promise) {
      return made.then((node) => {
        this.upper.add(node);
        return true;
      });
    }
    this.upper.add(made);
    return true;
  }

  /**
   * A whiteout hides lower layers only (OCI image-spec, layer.md; umoci does the same): what this
   * layer put at `dir/name`, or below it, stays, even when the marker comes later in the tar.
   */
  private whiteOut(dir: N, name: string): void {
    const node = this.ops.child(dir, name);
    const below = node === undefined ? undefined : this.hideLower(dir, name, node);
    if (below !== undefined) this.clearLower(below);
  }

  /** Opaque whiteout: hides everything below `dir` that this layer did not put there. */
  private clearLower(dir: N): void {
    // Iterative: a crafted layer may nest directories far deeper than the call stack allows.
    const pending = [dir];
    while (pending.length > 0) {
      const current = pending.pop()!;
      for (const name of this.ops.childNames(current)) {
        const below = this.hideLower(current, name, this.ops.child(current, name)!);
        if (below !== undefined) pending.push(below);
      }
    }
  }

  /**
   * One node under a whiteout: removed when only lower layers put it there; kept when this layer
   * did; returned when it holds entries of this layer, so its own lower children are hidden next.
   */
  private hideLower(dir: N, name: string, node: N): N | undefined {
    const isUpper = this.upper.has(node);
    if (this.upperAncestors.has(node) || (isUpper && this.ops.isDir(node))) return node;
    if (!isUpper) this.remove(dir, name);
    return undefined;
  }
}
