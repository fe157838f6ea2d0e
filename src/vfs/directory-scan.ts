import type { Inode, MergedTree } from './merged-tree.js';
import { FIRST_READ_PREFETCH_BYTES } from './image-reader.js';
import type { PlannedRead } from './access-profile.js';

/** Files read in a directory's order before the ones after them are fetched ahead (the first two may be chance). */
const SCAN_AFTER = 3;
/** Bytes fetched ahead once a scan is seen; each further file read in order doubles it, up to MAX_AHEAD_BYTES. */
const FIRST_AHEAD_BYTES = 512 * 1024;
/** The budget of this speculation: never more than this many bytes (uncompressed) ahead of the reader. */
export const MAX_AHEAD_BYTES = 8 * 1024 * 1024;
/** Reads out of order a scan takes in its stride (a symlink's target read where the link sorts) before it is over. */
const MAX_STRAYS = 2;
/** Directories followed at once (the least recently read one is dropped). */
const MAX_DIRS = 32;

/** A directory's regular files in listing order, and how far a scan of them has come. */
interface DirScan {
  files: Inode[];
  /** Place of each file (by inode: hardlinked names count once) in `files`. */
  at: Map<number, number>;
  /** Bytes a fetch of files[0..i) asks for (each file up to FIRST_READ_PREFETCH_BYTES). */
  ends: number[];
  /** Place of the last file read, and how many files in a row were read in order up to it. */
  last: number;
  streak: number;
  /** Reads out of order since the last one in order. */
  strays: number;
  /** Files before this place have been asked for. */
  fetchedTo: number;
  window: number;
}

/**
 * Programs that read a directory's files one after another (`sha256sum dir/*`, `tar`, `cp -r`,
 * `grep -r`, a backup or a virus scanner) would wait a round trip for each file: no hint says
 * what they read next. They read in the directory's order (a listing here is sorted, as a shell
 * glob is), so once SCAN_AFTER files have been read in that order, each with no unread file
 * between it and the one before, the files that follow are fetched ahead, as the kernel reads
 * ahead within a file: FIRST_AHEAD_BYTES, doubled with each file read as predicted, never more
 * than MAX_AHEAD_BYTES ahead (a file larger than that is fetched ahead in part). More than MAX_STRAYS reads out of order in a row end the scan. Pure: no FUSE, no network
 * (`fetch` is handed the reads).
 */
export class DirectoryScans {
  private readonly dirs = new Map<string, DirScan>();
  /** Files read (by inode). */
  private readonly read = new Set<number>();

  constructor(
    private readonly tree: MergedTree,
    private readonly fetch: (reads: PlannedRead[]) => void,
  ) {}

  /**
   * A regular file's first read, at its path in the tree. True when it continues a scan: the
   * file is being read through, not run (a caller may then skip what it fetches for programs,
   * such as an executable's libraries).
   */
  firstRead(inode: Inode, path: string): boolean {
    if (inode.type !== 'file') return false;
    this.read.add(inode.ino);
    const scan = this.scanOf(path.slice(0, path.lastIndexOf('/')) || '/');
    const place = scan?.at.get(inode.ino);
    if (!scan || place === undefined) return false;
    if (scan.last >= 0 && place > scan.last && this.allReadBetween(scan, scan.last, place)) {
      scan.streak++;
      scan.strays = 0;
    } else if (scan.streak >= SCAN_AFTER && ++scan.strays <= MAX_STRAYS) {
      // A scan reads a symlink's target where the link's name sorts (`awk` is mawk): still the
      // scan's, and it goes on from where it was.
      return true;
    } else {
      scan.streak = 1;
      scan.strays = 0;
    }
    scan.last = place;
    if (scan.streak < SCAN_AFTER) return false;
    scan.window = scan.streak === SCAN_AFTER ? FIRST_AHEAD_BYTES : Math.min(scan.window * 2, MAX_AHEAD_BYTES);
    const next = place + 1;
    let to = Math.max(scan.fetchedTo, next);
    const onItsWay = scan.ends[to]! - scan.ends[next]!;
    // Topped up once less than half the window is on its way: fetches of a few megabytes each,
    // whose ranges go out together, rather than one request per file read.
    if (onItsWay >= scan.window / 2) return true;
    let budget = scan.window - onItsWay;
    const ahead: PlannedRead[] = [];
    while (to < scan.files.length && budget > 0) {
      const file = scan.files[to]!;
      const wanted = scan.ends[to + 1]! - scan.ends[to]!;
      // Whole files; only a first one larger than the budget is fetched in part (its first read fetches the rest).
      if (wanted > budget && ahead.length > 0) break;
      if (!this.read.has(file.ino)) ahead.push({ inode: file, offset: 0, length: Math.min(wanted, budget) });
      budget -= wanted;
      to++;
    }
    scan.fetchedTo = to;
    if (ahead.length > 0) this.fetch(ahead);
    return true;
  }

  private allReadBetween(scan: DirScan, from: number, to: number): boolean {
    for (let i = from + 1; i < to; i++) if (!this.read.has(scan.files[i]!.ino)) return false;
    return true;
  }

  /** The scan state of a directory, made at its first read (most recently read directories kept). */
  private scanOf(dirPath: string): DirScan | undefined {
    let scan = this.dirs.get(dirPath);
    if (scan) {
      // Most recently used last: the first in the map is the one to drop.
      this.dirs.delete(dirPath);
      this.dirs.set(dirPath, scan);
      return scan;
    }
    const dir = this.tree.lookup(dirPath);
    if (dir?.type !== 'dir') return undefined;
    const files: Inode[] = [];
    const at = new Map<number, number>();
    for (const name of this.tree.readdir(dir)) {
      const file = dir.children!.get(name)!.inode;
      if (file.type !== 'file' || file.size === 0 || at.has(file.ino)) continue;
      at.set(file.ino, files.length);
      files.push(file);
    }
    const ends = [0];
    for (const file of files) ends.push(ends[ends.length - 1]! + Math.min(file.size, FIRST_READ_PREFETCH_BYTES));
    scan = { files, at, ends, last: -1, streak: 0, strays: 0, fetchedTo: 0, window: 0 };
    this.dirs.set(dirPath, scan);
    if (this.dirs.size > MAX_DIRS) this.dirs.delete(this.dirs.keys().next().value!);
    return scan;
  }
}
