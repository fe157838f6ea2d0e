import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './run.js';

export const KRGO_BIN = fileURLToPath(new URL('../../cli/krgo.cjs', import.meta.url));

/** Runs the built krgo CLI as a user would. */
export function krgo(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, [KRGO_BIN, ...args], { env: { ...process.env, ...env } });
}
