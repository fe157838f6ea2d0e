#!/usr/bin/env node
// The launcher, started by the `krgo` command (krgo.sh): runs the CLI bundle (krgo-main.cjs,
// built by scripts/bundle-cli.mjs) with V8's code cache of the command it runs
// (util/code-cache.ts). KRGO_NO_CODE_CACHE=1 runs it without, reading and writing none.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeCachePath, commandWord, compileWithCodeCache } from '../util/code-cache.js';
import { keepWebAssemblyBaseline } from '../util/optimizing-compiler.js';

// Before the bundle is compiled: V8 refuses a code cache made under other flags, and this one
// (unlike TurboFan's, held and released by a mount) cannot be turned back once set.
keepWebAssemblyBaseline();
const here = dirname(fileURLToPath(import.meta.url));
const bundle = join(here, 'krgo-main.cjs');
if (process.env['KRGO_NO_CODE_CACHE'] === '1') {
  // Node's own loader: the bundle is CommonJS.
  createRequire(import.meta.url)(bundle);
} else {
  const compiled = compileWithCodeCache(bundle, codeCachePath(join(here, 'code-cache'), bundle, commandWord(process.argv.slice(2))));
  // At exit the cache holds every function the command ran (a mount's included), not only the top level.
  process.once('exit', () => compiled.save());
  compiled.run();
}
