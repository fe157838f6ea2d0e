import { importedModules, MAX_SOURCE_BYTES, packageOf, searchPath } from './python-imports.js';
import { isPythonProgram, pythonCommandIn, pythonCommandModules } from './python-command.js';
import { modulesFromDeps } from '../index/file-hints.js';
import { resolvePath } from './resolve-path.js';
import { FollowedRuns, NO_PROCESSES, watchExec, type TreeProcesses } from './exec-watch.js';
import type { Inode, MergedTree } from './merged-tree.js';

/** A CPython 3 binary in a bin directory, with the prefix and version its stdlib goes by. */
const INTERPRETER = /^(.*)\/bin\/python(3\.\d+)$/;

/** Bounds on what one mount follows: nesting, and files. */
const MAX_DEPTH = 16;
const MAX_FILES = 2000;

interface Found {
  path: string;
  inode: Inode;
}

interface Listing {
  names: Set<string>;
  /** Extension module file by module name (`_ssl` → `_ssl.cpython-311-x86_64-linux-gnu.so`). */
  extensions: Map<string, string>;
  /** Compiled file by source stem (`json` → `json.cpython-311.pyc`). */
  compiled: Map<string, string>;
}

/**
 * When a Python source file is first read, the modules it imports at its top level (which run
 * when it runs: nothing in a function, a `try` or an `if` is followed) are fetched at once, and
 * theirs in turn as their bytes arrive: a program importing a dozen packages waits one round
 * trip per wave of imports instead of one per module. Modules are looked up as CPython's
 * default sys.path would (the installation's stdlib, lib-dynload, dist- and site-packages);
 * a compiled `__pycache__` file is fetched instead of the source when it is there (and not
 * followed further). The imports a `python3 -c CODE` or `-m MODULE` command line names are
 * fetched as soon as the interpreter's binary is first read, which is its exec: the command
 * line is read from /proc (a wrapper's, `chroot DIR python3 -c …`, ends with it already; else
 * the exec'ing process is watched until it shows), and again when an interpreter reads its
 * encodings package. They are read from no file. A hint only: failures are ignored and reads
 * never wait for it.
 */
export class PythonPrefetcher {
  private readonly seen = new Set<number>();
  private readonly followedRuns = new FollowedRuns();
  private readonly listings = new Map<string, Listing | undefined>();

  constructor(
    private readonly tree: MergedTree,
    private readonly read: (inode: Inode, offset: number, length: number) => Promise<Buffer>,
    /** Fetches module files found ahead, as one batch (and looks at the libraries of extensions). */
    private readonly fetch: (inodes: Inode[]) => void,
    /** The processes running in the tree (their command lines). */
    private readonly processes: TreeProcesses = NO_PROCESSES,
  ) {}

  opened(inode: Inode, path: string): void {
    if (inode.type !== 'file') return;
    const interpreter = INTERPRETER.exec(path);
    if (interpreter) {
      // The kernel reads the binary while it execs it: the process's new command line shows a
      // moment later, well before the interpreter reaches its first module.
      const roots = searchPath(`${interpreter[1]}/lib/python${interpreter[2]}/x.py`);
      if (roots && this.isDir(roots[0]!)) watchExec(this.processes, pythonCommandIn, (pid, argv) => this.interpreterFound(pid, argv, roots)).catch(() => undefined);
      return;
    }
    if (!path.endsWith('.py')) return;
    const installed = searchPath(path);
    const roots = installed ?? this.scriptPath(path);
    if (!roots) return;
    // Every CPython 3 imports its encodings package first thing: an interpreter is starting.
    if (installed && path.endsWith('/encodings/__init__.py')) this.interpreterStarting(installed).catch(() => undefined);
    if (this.seen.has(inode.ino)) return;
    this.seen.add(inode.ino);
    this.follow(inode, path, roots, 0).catch(() => undefined);
  }

  /** What the command lines of new interpreters name (-c CODE, -m MODULE), fetched with what it imports. */
  private async interpreterStarting(roots: string[]): Promise<void> {
    for (const { pid, argv } of await this.processes.commandLines()) this.interpreterFound(pid, argv, roots);
  }

  /** Follows what a command line names when it is an interpreter's not followed yet; whether it was. */
  private interpreterFound(pid: number, argv: string[], roots: string[]): boolean {
    if (!isPythonProgram(argv) || !this.followedRuns.add(pid, argv)) return false;
    this.followModules(pythonCommandModules(argv), roots, 0);
    return true;
  }

  private async follow(inode: Inode, path: string, roots: string[], depth: number): Promise<void> {
    if (depth > MAX_DEPTH) return;
    // The index's hints when it has them: the whole import tree is walked at once, without a
    // round trip per level for each module's source to arrive.
    const modules = inode.deps
      ? modulesFromDeps(inode.deps)
      : importedModules((await this.read(inode, 0, Math.min(inode.size, MAX_SOURCE_BYTES))).toString('latin1'), packageOf(path, roots));
    this.followModules(modules, roots, depth);
  }

  /**
   * Fetches the files of `modules` and of all they import that the hints name, as one batch: the
   * reader plans one set of requests for the lot (neighbouring modules of a package in one).
   */
  private followModules(modules: readonly string[], roots: string[], depth: number): void {
    const batch: Inode[] = [];
    this.walk(modules, roots, depth, batch);
    if (batch.length) this.fetch(batch);
  }

  private walk(modules: readonly string[], roots: string[], depth: number, batch: Inode[]): void {
    if (depth > MAX_DEPTH) return;
    for (const module of modules) {
      for (const found of this.locate(module, roots)) {
        if (this.seen.has(found.inode.ino) || this.seen.size >= MAX_FILES) continue;
        this.seen.add(found.inode.ino);
        batch.push(found.inode);
        if (!found.path.endsWith('.py')) continue;
        if (found.inode.deps) this.walk(modulesFromDeps(found.inode.deps), roots, depth + 1, batch);
        else this.follow(found.inode, found.path, roots, depth + 1).catch(() => undefined);
      }
    }
  }

  /** The files importing `module` loads: each package's __init__ on the way, then the module. */
  private locate(module: string, roots: string[]): Found[] {
    const parts = module.split('.');
    const root = roots.find((r) => this.moduleAt(`${r}/${parts[0]}`) !== undefined || this.isDir(`${r}/${parts[0]}`));
    if (!root) return [];
    const files: Found[] = [];
    for (let k = 1; k <= parts.length; k++) {
      const found = this.moduleAt(`${root}/${parts.slice(0, k).join('/')}`);
      if (found) files.push(found);
      else if (!this.isDir(`${root}/${parts.slice(0, k).join('/')}`)) break;
    }
    return files;
  }

  /** What `import` reads for the module at `base` (a path without suffix), if anything. */
  private moduleAt(base: string): Found | undefined {
    const slash = base.lastIndexOf('/');
    const dir = base.slice(0, slash);
    const name = base.slice(slash + 1);
    for (const [listed, candidate] of [
      [this.listing(base)?.names.has('__init__.py'), `${base}/__init__.py`],
      [this.listing(dir)?.names.has(`${name}.py`), `${base}.py`],
    ] as const) {
      if (!listed) continue;
      const inode = resolvePath(this.tree, candidate);
      if (inode?.type !== 'file') continue;
      const sourceDir = candidate.slice(0, candidate.lastIndexOf('/'));
      const stem = candidate.endsWith('/__init__.py') ? '__init__' : name;
      return this.compiled(sourceDir, stem) ?? { path: candidate, inode };
    }
    // Extension modules: name.cpython-311-x86_64-linux-gnu.so, name.abi3.so, name.so.
    const so = this.listing(dir)?.extensions.get(name);
    const inode = so === undefined ? undefined : resolvePath(this.tree, `${dir}/${so}`);
    return inode?.type === 'file' ? { path: `${dir}/${so}`, inode } : undefined;
  }

  /** __pycache__/<stem>.cpython-XY.pyc beside a source: what CPython reads instead of it. */
  private compiled(dir: string, stem: string): Found | undefined {
    const pyc = this.listing(`${dir}/__pycache__`)?.compiled.get(stem);
    const inode = pyc === undefined ? undefined : resolvePath(this.tree, `${dir}/__pycache__/${pyc}`);
    return inode?.type === 'file' ? { path: `${dir}/__pycache__/${pyc}`, inode } : undefined;
  }

  /**
   * A directory's names, with its extension modules and compiled files by module name (the
   * first in name order, as a scan would find): listed once per mount, as a walk asks about the
   * same few directories for every module (the tree under a lazy mount does not change).
   */
  private listing(path: string): Listing | undefined {
    if (this.listings.has(path)) return this.listings.get(path);
    const dir = resolvePath(this.tree, path);
    let listing: Listing | undefined;
    if (dir?.type === 'dir') {
      const names = this.tree.readdir(dir);
      listing = { names: new Set(names), extensions: new Map(), compiled: new Map() };
      for (const entry of names) {
        const dot = entry.indexOf('.');
        if (dot <= 0) continue;
        const stem = entry.slice(0, dot);
        if (entry.endsWith('.so') && !listing.extensions.has(stem)) listing.extensions.set(stem, entry);
        if (entry.endsWith('.pyc') && entry.split('.').length === 3 && entry.startsWith(`${stem}.cpython-`) && !listing.compiled.has(stem)) listing.compiled.set(stem, entry);
      }
    }
    this.listings.set(path, listing);
    return listing;
  }

  /**
   * A script outside any installation (/app/main.py): its own directory first, as sys.path[0],
   * then the installation's path, when the tree has exactly one Python 3 installation.
   */
  private scriptPath(path: string): string[] | undefined {
    const installs: string[] = [];
    for (const prefix of ['/usr/lib', '/usr/local/lib']) {
      for (const name of this.listing(prefix)?.names ?? []) {
        if (/^python3\.\d+$/.test(name) && this.isDir(`${prefix}/${name}`)) installs.push(`${prefix}/${name}/`);
      }
    }
    if (installs.length !== 1) return undefined;
    const roots = searchPath(`${installs[0]}x.py`);
    return roots && [path.slice(0, path.lastIndexOf('/')) || '/', ...roots];
  }

  private isDir(path: string): boolean {
    return this.listing(path) !== undefined;
  }
}
