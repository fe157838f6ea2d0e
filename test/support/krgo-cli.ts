import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './run.js';

/** The `krgo` command as a user runs it (package.json's bin: a shell script that starts node). */
export const KRGO_COMMAND = fileURLToPath(new URL('../../cli/krgo', import.meta.url));
/** The launcher the command starts: for a test that gives node flags of its own. */
export const KRGO_BIN = fileURLToPath(new URL('../../cli/krgo.cjs', import.meta.url));

/** Runs the built krgo CLI as a user would. */
export function krgo(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(KRGO_COMMAND, args, { env: { ...process.env, ...env } });
}
