import { elfDependencies, type ElfDependencies } from './elf-deps.js';
import { LOADER_FILES, RUNTIME_FILES } from './runtime-files.js';
import { elfFromDeps } from '../index/file-hints.js';
import { resolvePath } from './resolve-path.js';
import type { ImageReader } from './image-reader.js';
import type { Inode, MergedTree } from './merged-tree.js';

/** Where the dynamic loader looks when a library is named without a path (ld.so's defaults on Debian and friends). */
const LIBRARY_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
const MAX_DEPTH = 4;
/** The smallest ELF file: its 64-byte header. */
const ELF_HEADER_BYTES = 64;

/**
 * When an executable is opened, the libraries its loader will open one by one (interpreter,
 * DT_NEEDED, theirs in turn) are fetched at once, in parallel: over a link with 50 ms round
 * trips that is one wait instead of one per library. A hint only: any failure is ignored, and
 * reads never wait for it.
 */
export class LibraryPrefetcher {
  private readonly seen = new Set<number>();

  constructor(
    private readonly tree: MergedTree,
    private readonly reader: ImageReader,
  ) {}

  /**
   * At mount time: the image's own command (Entrypoint, else Cmd; a bare name is looked up in
   * the config's PATH) and its libraries, which is what a container engine starts first.
   */
  command(config: { Entrypoint?: unknown; Cmd?: unknown; Env?: unknown } | undefined): void {
    const argv = Array.isArray(config?.Entrypoint) && config.Entrypoint.length ? config.Entrypoint : Array.isArray(config?.Cmd) ? config.Cmd : [];
    const program = typeof argv[0] === 'string' ? argv[0] : undefined;
    if (!program) return;
    const pathVar = (Array.isArray(config?.Env) ? config.Env : []).find((e): e is string => typeof e === 'string' && e.startsWith('PATH='));
    const candidates = program.includes('/') ? [program] : (pathVar?.slice(5) ?? '/usr/local/bin:/usr/bin:/bin').split(':').map((dir) => `${dir}/${program}`);
    for (const candidate of candidates) {
      const inode = resolvePath(this.tree, candidate);
      if (inode?.type === 'file') {
        this.reader.prefetch(inode);
        this.opened(inode);
        return;
      }
    }
  }

  /**
   * A file's first read: an executable, or any ELF file (a shared object loaded with dlopen, such
   * as a Python extension module, is often not executable). Its first bytes are on their way
   * for the read that came: telling whether it is ELF costs no fetch.
   */
  opened(inode: Inode): void {
    if (inode.type === 'file' && inode.size >= ELF_HEADER_BYTES) this.visit(inode, 0).catch(() => undefined);
  }

  private async visit(inode: Inode, depth: number): Promise<void> {
    if (this.seen.has(inode.ino) || depth > MAX_DEPTH) return;
    this.seen.add(inode.ino);
    // The index's hints when it has them: no wait for the file's own bytes (its dynamic section
    // often sits at its end, behind the rest of the file).
    const deps: ElfDependencies | undefined = inode.deps ? elfFromDeps(inode.deps) : await elfDependencies((offset, length) => this.reader.read(inode, offset, length), inode.size);
    if (!deps) return;
    const libraries = deps.needed.map((name) => (name.includes('/') ? resolvePath(this.tree, name) : this.find(name)));
    if (deps.interpreter) libraries.push(resolvePath(this.tree, deps.interpreter));
    const runtime = [...(deps.interpreter ? LOADER_FILES : []), ...RUNTIME_FILES.filter((r) => r.symbols.some((name) => deps.names.has(name))).flatMap((r) => r.files)];
    for (const path of runtime) {
      const file = resolvePath(this.tree, path);
      if (file?.type === 'file' && !this.seen.has(file.ino)) {
        this.seen.add(file.ino);
        this.reader.prefetch(file);
      }
    }
    for (const library of libraries) {
      if (!library || library.type !== 'file' || this.seen.has(library.ino)) continue;
      this.reader.prefetch(library);
      this.visit(library, depth + 1).catch(() => undefined);
    }
  }

  private find(name: string): Inode | undefined {
    for (const dir of LIBRARY_DIRS) {
      const found = resolvePath(this.tree, `${dir}/${name}`);
      if (found) return found;
    }
    return undefined;
  }
}
