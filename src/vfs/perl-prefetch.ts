import { perlModulesFromDeps } from '../index/file-hints.js';
import { perlCommandIn, perlCommandModules } from './perl-modules.js';
import { resolvePath } from './resolve-path.js';
import { FollowedRuns, NO_PROCESSES, watchExec, type TreeProcesses } from './exec-watch.js';
import type { Inode, MergedTree } from './merged-tree.js';

/** Files one mount follows, and module names it looks up, at most. */
const MAX_FILES = 2000;
const MAX_LOOKUPS = 20_000;
/** A perl binary in a bin directory (`perl`, `perl5.36.0`). */
const PERL_BINARY = /\/bin\/perl(?:5(?:\.\d+)*)?$/;
/**
 * Where perl looks for modules (@INC), in its order, as Debian lays it out, then Fedora, Arch
 * and Alpine; `*` is one directory level (the multiarch triplet, the version).
 */
const INC_PATTERNS = [
  '/etc/perl',
  '/usr/local/lib/*/perl/*',
  '/usr/local/share/perl/*',
  '/usr/lib/*/perl5/*',
  '/usr/share/perl5',
  '/usr/lib/*/perl-base',
  '/usr/lib/*/perl/*',
  '/usr/share/perl/*',
  '/usr/local/lib/site_perl',
  '/usr/local/lib64/perl5',
  '/usr/local/share/perl5',
  '/usr/lib64/perl5/vendor_perl',
  '/usr/share/perl5/vendor_perl',
  '/usr/lib64/perl5',
  '/usr/lib/perl5/site_perl',
  '/usr/lib/perl5/vendor_perl',
  '/usr/lib/perl5/core_perl',
  '/usr/share/perl5/core_perl',
];

/**
 * Perl loads its modules one after another, each a round trip on a cold mount. When a file
 * whose index hints name modules is first read (a module, a script), or when perl is exec'd
 * with `-M`/`-e` (its command line read from /proc, exec-watch.ts), the modules and all they
 * load in turn are fetched at once, as one batch, with the XS libraries (auto/…/X.so) of those
 * that have one. Modules are looked up in @INC's usual directories. Hints only: nothing is
 * followed without them (an index from an older krgo), and reads never wait for this.
 */
export class PerlPrefetcher {
  private readonly seen = new Set<number>();
  private readonly followedRuns = new FollowedRuns();
  private readonly looked = new Set<string>();
  private inc: string[] | undefined;

  constructor(
    private readonly tree: MergedTree,
    /** Fetches the files found ahead, as one batch. */
    private readonly fetch: (inodes: Inode[]) => void,
    private readonly processes: TreeProcesses = NO_PROCESSES,
  ) {}

  opened(inode: Inode, path: string): void {
    if (inode.type !== 'file') return;
    if (PERL_BINARY.test(path)) {
      watchExec(this.processes, perlCommandIn, (pid, argv) => this.perlFound(pid, argv)).catch(() => undefined);
      return;
    }
    const modules = inode.deps ? perlModulesFromDeps(inode.deps) : [];
    if (modules.length === 0 || this.seen.has(inode.ino)) return;
    this.seen.add(inode.ino);
    // A module of @INC: its own XS library is loaded next.
    const root = path.endsWith('.pm') ? this.incDirs().find((dir) => path.startsWith(`${dir}/`)) : undefined;
    const own = root ? this.xsOf(path.slice(root.length + 1, -3).split('/')) : undefined;
    this.follow(modules, own ? [own] : []);
  }

  /** What a perl process's command line loads, followed once per process; whether it was new. */
  private perlFound(pid: number, argv: string[]): boolean {
    if (!this.followedRuns.add(pid, argv)) return false;
    this.follow(perlCommandModules(argv));
    return true;
  }

  /** The files of `modules` and of all they load, by their hints, fetched as one batch. */
  private follow(modules: readonly string[], batch: Inode[] = []): void {
    const pending = [...modules];
    for (let next = 0; next < pending.length && this.seen.size < MAX_FILES && this.looked.size < MAX_LOOKUPS; next++) {
      const module = pending[next]!;
      // Each name is looked up once per mount: hints from elsewhere may name thousands.
      if (this.looked.has(module)) continue;
      this.looked.add(module);
      const file = this.locate(`${module.replaceAll('::', '/')}.pm`);
      if (!file || this.seen.has(file.ino)) continue;
      this.seen.add(file.ino);
      batch.push(file);
      if (file.deps) pending.push(...perlModulesFromDeps(file.deps));
      const xs = this.xsOf(module.split('::'));
      if (xs) batch.push(xs);
    }
    if (batch.length) this.fetch(batch);
  }

  /** The XS library XSLoader and DynaLoader load for a module (auto/Foo/Bar/Bar.so for Foo::Bar), when there is one not fetched yet. */
  private xsOf(parts: string[]): Inode | undefined {
    const xs = this.locate(`auto/${parts.join('/')}/${parts[parts.length - 1]}.so`);
    if (!xs || this.seen.has(xs.ino)) return undefined;
    this.seen.add(xs.ino);
    return xs;
  }

  /** The first file at `relative` under @INC's directories. */
  private locate(relative: string): Inode | undefined {
    for (const root of this.incDirs()) {
      const inode = resolvePath(this.tree, `${root}/${relative}`);
      if (inode?.type === 'file') return inode;
    }
    return undefined;
  }

  /** @INC's directories present in the tree, found once (the tree of a lazy mount does not change). */
  private incDirs(): string[] {
    if (this.inc) return this.inc;
    const found: string[] = [];
    for (const pattern of INC_PATTERNS) {
      let dirs = [''];
      for (const part of pattern.split('/').slice(1)) {
        dirs = dirs.flatMap((dir) => (part === '*' ? this.subdirs(dir).map((name) => `${dir}/${name}`) : [`${dir}/${part}`]));
      }
      for (const dir of dirs) if (resolvePath(this.tree, dir)?.type === 'dir' && !found.includes(dir)) found.push(dir);
    }
    return (this.inc = found);
  }

  private subdirs(path: string): string[] {
    const dir = resolvePath(this.tree, path || '/');
    return dir?.type === 'dir' ? this.tree.readdir(dir).filter((name) => resolvePath(this.tree, `${path}/${name}`)?.type === 'dir') : [];
  }
}
