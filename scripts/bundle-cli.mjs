// `npm run build`, after tsc: bundles the compiled CLI (dist/src/cli/main.js) with its
// dependencies into dist/cli/krgo.js, the `krgo` command. One file per entry instead of ~150
// ES modules and undici's parts: Node resolves, reads and links far fewer files before the
// first request leaves (a mount's ready time, and every command's start). Commands and the
// mount's serving parts, imported on demand, stay chunks of their own.
import { build } from 'esbuild';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Semi-spaces of 8 MiB from the start instead of 1 (measured against 16, which gained less, and 32, which lost). */
const NODE_START_FLAGS = '--min-semi-space-size=8';
await build({
  entryPoints: { krgo: join(root, 'dist/src/cli/main.js') },
  outdir: join(root, 'dist/cli'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  // The FUSE binding loads its native part relative to its own folder.
  external: ['fuse-native'],
  // CommonJS dependencies (undici, simple-git) call require() for Node's modules.
  banner: { js: "import { createRequire as krgoCreateRequire } from 'node:module'; const require = krgoCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
// Run as a command, krgo starts node with a larger young generation: a mount decodes indexes and
// builds a tree of tens of thousands of objects that all survive, and from V8's 1 MiB start each
// scavenge copies them again (native-notes/fuse.md, "A mount's way to ready"). A V8 flag can only be given when the process starts; `env -S`
// would pass it, but BusyBox's env (Alpine) has no -S: /bin/sh runs the line below (to JS, a string
// and a comment) and replaces itself with node, which skips the first line as a hashbang.
const bundle = join(root, 'dist/cli/krgo.js');
const code = await readFile(bundle, 'utf8');
if (!code.startsWith('#!/usr/bin/env node\n')) throw new Error('dist/cli/krgo.js does not start with the #! line of src/cli/main.ts');
await writeFile(bundle, `#!/bin/sh\n':' //; exec node ${NODE_START_FLAGS} "$0" "$@"\n${code.slice(code.indexOf('\n') + 1)}`);
await chmod(bundle, 0o755);
