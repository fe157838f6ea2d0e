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
const CHOSEN = /--(no-)?(turbofan|opt|jitless|maglev)\b/;

/** Turns TurboFan off until the returned function is called (once; later calls do nothing). */
export function holdOptimizingCompiler(): () => void {
  const chosen = [...process.execArgv, process.env['NODE_OPTIONS'] ?? ''].some((flag) => CHOSEN.test(flag));
  if (chosen) return () => undefined;
  setFlagsFromString('--no-turbofan');
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    setFlagsFromString('--turbofan');
  };
}
