import type { Inode, MergedTree } from './merged-tree.js';
import type { PlannedRead } from './access-profile.js';
import { FIRST_READ_PREFETCH_BYTES } from './image-reader.js';
import { TreeOrder, type PlacedFile } from './tree-order.js';

/** Files read in an order before the ones after them are fetched ahead (the first two may be chance). */
const SCAN_AFTER = 3;
/** Bytes fetched ahead once a scan is seen; each further file read in order doubles it, up to MAX_AHEAD_BYTES. */
const FIRST_AHEAD_BYTES = 512 * 1024;
/** The budget of this speculation: never more than this many bytes (uncompressed) ahead of the reader. */
export const MAX_AHEAD_BYTES = 8 * 1024 * 1024;
/** Reads out of order a scan takes in its stride (a symlink's target read where the link sorts) before it is over. */
const MAX_STRAYS = 2;
/** Read files passed over, at most, looking for the one after the last read (a check costs no more). */
const MAX_SKIPPED = 256;
/** Directories followed at once (the least recently read one is dropped). */
const MAX_DIRS = 32;

/** One order's scan: the last file read in it, and what was fetched ahead of it. */
interface Scan {
  last?: PlacedFile;
  /** The directory holding every file of the streak: what is fetched ahead stays in it. */
  root: string;
  /** Files read in a row in this order, up to `last`; reads out of order since. */
  streak: number;
  strays: number;
  /** Files fetched ahead and not read yet, in order, with the bytes asked for each. */
  ahead: { file: PlacedFile; bytes: number }[];
}

const newScan = (): Scan => ({ root: '', streak: 0, strays: 0, ahead: [] });

/**
 * Programs that read files one after another (`sha256sum dir/*`, `tar`, `cp -r`, `grep -r`, a
 * backup or a virus scanner) would wait a round trip for each file: no hint says what they read
 * next. They read in the tree's order (TreeOrder): a directory's files, or a depth-first walk.
 * Once SCAN_AFTER files have been read in one of those orders, each the first unread file after
 * the one before, the files that follow are fetched ahead, as the kernel reads ahead within a
 * file: FIRST_AHEAD_BYTES, doubled with each file read as predicted, never more than
 * MAX_AHEAD_BYTES ahead (a file larger than what is left is fetched ahead in part), topped up
 * once less than half of it is on its way, and never past the directory that holds the files
 * read in the streak (a walk of a subtree ends where the subtree does; it widens as the reader
 * goes on out of it, at a round trip's cost). More than MAX_STRAYS reads out of order in a row
 * end a scan. Pure: no FUSE, no network (`fetch` is handed the reads).
 */
export class DirectoryScans {
  private readonly order: TreeOrder;
  /** A scan of each directory read lately, by its path; and one of the depth-first walk. */
  private readonly dirs = new Map<string, Scan>();
  private readonly walk = newScan();
  /** Files read (by inode). */
  private readonly read = new Set<number>();

  constructor(
    tree: MergedTree,
    private readonly fetch: (reads: PlannedRead[]) => void,
  ) {
    this.order = new TreeOrder(tree);
  }

  /**
   * A regular file's first read, at its path in the tree. True when it continues a scan: the
   * file is being read through, not run (a caller may then skip what it fetches for programs,
   * such as an executable's libraries).
   */
  firstRead(inode: Inode, path: string): boolean {
    if (inode.type !== 'file') return false;
    const file = { path, inode };
    // Within a directory both orders agree: the walk fetches, and goes on into the next one. The
    // directory's own scan fetches when the walk's does not (`dir/*` skips subdirectories).
    const inWalk = this.step(this.walk, file, (from) => this.order.walkAfter(from), true);
    const inDirectory = this.step(this.dirScan(path.slice(0, path.lastIndexOf('/'))), file, (from) => this.order.siblingsAfter(from), !inWalk);
    // Marked read only now: the scans above look for it as the first unread file after the last.
    this.read.add(inode.ino);
    return inWalk || inDirectory;
  }

  /** Takes a read into one order's scan, fetching ahead when it continues one. */
  private step(scan: Scan, file: PlacedFile, after: (path: string) => Iterable<PlacedFile>, fetching: boolean): boolean {
    if (scan.last && this.firstUnread(after(scan.last.path))?.inode === file.inode) {
      scan.streak++;
      scan.strays = 0;
      scan.root = commonDir(scan.root, file.path);
    } else if (scan.streak >= SCAN_AFTER && ++scan.strays <= MAX_STRAYS) {
      // A scan reads a symlink's target where the link's name sorts (`awk` is mawk): still the
      // scan's, and it goes on from where it was.
      return true;
    } else {
      scan.streak = 1;
      scan.strays = 0;
      scan.ahead = [];
      scan.root = file.path.slice(0, file.path.lastIndexOf('/'));
    }
    scan.last = file;
    if (scan.streak < SCAN_AFTER) return false;
    // Doubled with each file read in order since the scan was seen.
    const windowBytes = Math.min(FIRST_AHEAD_BYTES * 2 ** (scan.streak - SCAN_AFTER), MAX_AHEAD_BYTES);
    // What was fetched up to this file is being read now.
    const reached = scan.ahead.findIndex((a) => a.file.inode === file.inode);
    scan.ahead = reached >= 0 ? scan.ahead.slice(reached + 1) : [];
    const onItsWay = scan.ahead.reduce((n, a) => n + a.bytes, 0);
    // Topped up once less than half the window is on its way: fetches of a few megabytes each,
    // whose ranges go out together, rather than one request per file read.
    if (!fetching || onItsWay >= windowBytes / 2) return true;
    let budget = windowBytes - onItsWay;
    let skipped = 0;
    const reads: PlannedRead[] = [];
    for (const next of after((scan.ahead[scan.ahead.length - 1]?.file ?? file).path)) {
      // Past the subtree the streak is in, a walk may have left what the program reads (`grep -r DIR`).
      if (budget <= 0 || skipped > MAX_SKIPPED || !next.path.startsWith(`${scan.root}/`)) break;
      if (this.read.has(next.inode.ino)) {
        skipped++;
        continue;
      }
      const wanted = Math.min(next.inode.size, FIRST_READ_PREFETCH_BYTES);
      // Whole files; only a first one larger than the budget is fetched in part (its first read fetches the rest).
      if (wanted > budget && reads.length > 0) break;
      const bytes = Math.min(wanted, budget);
      reads.push({ inode: next.inode, offset: 0, length: bytes });
      scan.ahead.push({ file: next, bytes });
      budget -= wanted;
    }
    if (reads.length > 0) this.fetch(reads);
    return true;
  }

  /** The first file of `files` not read yet (looking at MAX_SKIPPED read ones at most). */
  private firstUnread(files: Iterable<PlacedFile>): PlacedFile | undefined {
    let skipped = 0;
    for (const file of files) {
      if (!this.read.has(file.inode.ino)) return file;
      if (++skipped > MAX_SKIPPED) return undefined;
    }
    return undefined;
  }

  /** The scan of a directory (most recently read directories kept). */
  private dirScan(dirPath: string): Scan {
    let scan = this.dirs.get(dirPath);
    // Most recently used last: the first in the map is the one to drop.
    if (scan) this.dirs.delete(dirPath);
    this.dirs.set(dirPath, (scan ??= newScan()));
    if (this.dirs.size > MAX_DIRS) this.dirs.delete(this.dirs.keys().next().value!);
    return scan;
  }
}

/** The deepest directory holding both `dir` and the file at `path`. */
function commonDir(dir: string, path: string): string {
  let common = dir;
  while (common !== '' && !path.startsWith(`${common}/`)) common = common.slice(0, common.lastIndexOf('/'));
  return common;
}
