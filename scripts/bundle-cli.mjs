// `npm run build`, after tsc: bundles the compiled CLI (dist/src/cli/main.js) with its
// dependencies into dist/cli/krgo.js, the `krgo` command. One file per entry instead of ~150
// ES modules and undici's parts: Node resolves, reads and links far fewer files before the
// first request leaves (a mount's ready time, and every command's start). Commands and the
// mount's serving parts, imported on demand, stay chunks of their own.
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
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
await chmod(join(root, 'dist/cli/krgo.js'), 0o755);
