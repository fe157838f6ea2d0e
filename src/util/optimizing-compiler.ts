import { setFlagsFromString } from 'node:v8';

/*
 * A mount's start is a burst of code that runs hot for a few hundred milliseconds and then
 * hardly again: decoding the indexes, building the tree, parsing the first responses. V8's
 * optimizing compiler (TurboFan) compiles such code on background threads, and on the bench's
 * 2-core machine that took ~230 ms of CPU per mount (per-thread CPU times of the mount process,
 * with and without it), while the program the user just started needs the cores; the optimized
 * code came too late to pay for itself. Held during the start, ready came 35–65 ms sooner
 * (native-notes/cli-startup.md). V8 reads the flag at each tiering decision, so it can be turned
 * back on: a mount that keeps serving gets optimized code as usual.
 */

/** Flags with which the user chose the compilers themselves: left as they are. */
const CHOSEN = /--(no-)?(turbofan|opt|jitless|maglev|liftoff|liftoff-only|wasm-[a-z-]+)\b/;

function compilersChosen(): boolean {
  return [...process.execArgv, process.env['NODE_OPTIONS'] ?? ''].some((flag) => CHOSEN.test(flag));
}

/**
 * WebAssembly stays in V8's baseline compiler (Liftoff). The CLI's only wasm is undici's HTTP
 * parser (llhttp), compiled afresh by every process at its first connection; V8 then recompiled
 * its hot functions with TurboFan on a background thread, ~165 ms of CPU per mount on the bench
 * machine (perf, per thread), for a parser that reads headers and chunk sizes and passes bodies
 * through. To take effect, this must run before the first connection compiles the parser; the
 * launcher runs it before compiling the bundle, whose code cache V8 checks against the flags.
 */
export function keepWebAssemblyBaseline(): void {
  if (!compilersChosen()) setFlagsFromString('--liftoff-only');
}

/**
 * Turns TurboFan off until the returned function is called (once; later calls do nothing), or
 * the process exits: V8 refuses a code cache made under other flags than the next run starts
 * with, so the flag is back before the launcher's exit handler writes the cache.
 */
export function holdOptimizingCompiler(): () => void {
  if (compilersChosen()) return () => undefined;
  setFlagsFromString('--no-turbofan');
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.removeListener('exit', release);
    setFlagsFromString('--turbofan');
  };
  process.prependOnceListener('exit', release);
  return release;
}
