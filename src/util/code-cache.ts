import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

/*
 * V8's code cache for the CLI bundle, as Node 22's module.enableCompileCache() keeps one (Node 20
 * has no such call): the bytecode of the functions a command ran, kept beside the bundle and
 * handed to V8 the next time, so a command does not parse and compile them again. Measured on
 * `krgo mount` (native-notes/cli-startup.md): compiling the bundle's top level takes 26–28 ms
 * without the cache and 6–8 ms with it, and the functions a mount runs are not compiled again.
 *
 * A script compiled from a cache has no hook for dynamic import() in Node 20, so the bundle may
 * hold none (scripts/bundle-cli.mjs refuses to build one that does).
 *
 * Beside the bundle, never in a shared temp directory: V8 trusts what a cache holds (it is
 * code), so only who may change the bundle may change its cache.
 */

/** A cache is written again when a run's is this much larger (new functions compiled). */
const GROWTH_WORTH_WRITING = 1.1;

/** The bundle as V8 compiled it, and what its cache did. */
export interface CompiledBundle {
  /** undefined: there was no cache; true: V8 refused it (another V8, other flags, damage). */
  rejected: boolean | undefined;
  /** Runs the bundle as Node would run the file (its own require, __filename and __dirname). */
  run(): void;
  /**
   * Writes the cache (what the run compiled so far) when there was none, V8 refused it, or this
   * run compiled notably more than it held; never throws (a read-only install runs without one).
   */
  save(): boolean;
}

/**
 * One cache file per command word: each command compiles its own parts (a mount: the registry
 * client, the index decoder, the tree), and a cache a `--version` wrote would hold none of them.
 * The name carries the bundle's size and time (a rebuilt bundle never meets an old cache: V8
 * checks only the source's length) and V8's version.
 */
export function codeCachePath(cacheDir: string, bundle: string, command: string): string {
  const { size, mtimeMs } = statSync(bundle);
  return join(cacheDir, `${command}-${size}-${Math.trunc(mtimeMs)}-v8-${process.versions.v8}.bin`);
}

/** The command word a cache file is kept for: the first argument when it is one, else `krgo`. */
export function commandWord(args: readonly string[]): string {
  const first = args[0];
  return first !== undefined && /^[a-z]{1,32}$/.test(first) ? first : 'krgo';
}

/**
 * Compiles a CommonJS file (an esbuild bundle) with `cacheFile` as its code cache: a missing,
 * refused or damaged cache only costs the compile.
 */
export function compileWithCodeCache(file: string, cacheFile: string): CompiledBundle {
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // None yet.
  }
  let source = readFileSync(file, 'utf8');
  // The bundle keeps the entry's `#!` line, which is no JavaScript inside a function wrapper.
  if (source.startsWith('#!')) source = `//${source}`;
  const script = new Script(Module.wrap(source), { filename: file, ...(cachedData ? { cachedData } : {}) });
  const rejected = cachedData ? script.cachedDataRejected === true : undefined;
  return {
    rejected,
    run: () => {
      const module = { exports: {} };
      const wrapper = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
      wrapper(module.exports, createRequire(file), module, file, dirname(file));
    },
    save: () => {
      if (!cachedData || rejected) return writeCache(cacheFile, script.createCachedData());
      // A command takes other paths from run to run (a mount replaying a profile, one that is
      // not): the cache grows to hold them. Never shrinks: a long-lived process may have dropped
      // the bytecode of its start (V8 flushes bytecode unused for a while).
      const now = script.createCachedData();
      return now.length > cachedData.length * GROWTH_WORTH_WRITING ? writeCache(cacheFile, now) : false;
    },
  };
}

/** Written whole or not at all; the command's caches for other bundles or V8s go. */
function writeCache(cacheFile: string, data: Buffer): boolean {
  const dir = dirname(cacheFile);
  const tmp = `${cacheFile}.tmp-${process.pid}`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    writeFileSync(tmp, data, { mode: 0o644 });
    renameSync(tmp, cacheFile);
    const command = cacheFile.slice(dir.length + 1).split('-')[0]!;
    for (const name of readdirSync(dir)) {
      if (name.startsWith(`${command}-`) && join(dir, name) !== cacheFile && !name.includes('.tmp-')) rmSync(join(dir, name), { force: true });
    }
    return true;
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Its folder is what failed.
    }
    return false;
  }
}
