// `npm run prepare`: compiles the CLI. `npm install -g .` from a fresh clone links the folder
// and runs this without installing the folder's own dependencies (npm does not for a linked
// folder), so they are installed here first (which also builds the native parts), then tsc runs.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, env = process.env) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env });
if (!existsSync(join(root, 'node_modules', 'typescript')) && !process.env.KRGO_PREPARE_NESTED) {
  // The nested install runs this script again (as its own prepare), with the compiler in place.
  // A plain local install in this folder, not another global one (npm passes its settings down in npm_config_*).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_(global|prefix|location)$/i.test(k)));
  run('npm', ['install', '--global=false', '--no-audit', '--no-fund'], { ...env, KRGO_PREPARE_NESTED: '1' });
} else {
  run('npm', ['run', 'build']);
}
