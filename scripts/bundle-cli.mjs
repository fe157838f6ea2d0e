// `npm run build`, after tsc: bundles the compiled CLI (dist/src/cli/main.js) with its
// dependencies into one CommonJS file, dist/cli/krgo-main.cjs, run by the launcher
// (dist/cli/krgo.cjs, from src/cli/launcher.ts) with V8's code cache (src/util/code-cache.ts);
// the `krgo` command (dist/cli/krgo, from src/cli/krgo.sh) starts node on the launcher.
// One file instead of ~150 ES modules and undici's parts: Node resolves, reads and links far
// fewer files before the first request leaves (a mount's ready time, and every command's
// start). What a command imports on demand is still evaluated only when imported.
import { build } from 'esbuild';
import { chmod, copyFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // import.meta.url as ES modules see it, from CommonJS's __filename.
  define: { 'import.meta.url': 'krgoModuleUrl' },
  banner: { js: "const krgoModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
};
const main = await build({
  ...common,
  entryPoints: [join(root, 'dist/src/cli/main.js')],
  outfile: join(root, 'dist/cli/krgo-main.cjs'),
  // The FUSE binding loads its native part relative to its own folder.
  external: ['fuse-native'],
  metafile: true,
});
// A script compiled from a code cache has no dynamic import() hook (Node 20 keeps none in the
// cache): an import() esbuild left in place (a Node module's, an external's) would fail only when
// run. Such an import must be static, or a require().
const dynamic = Object.values(main.metafile.outputs).flatMap((output) => output.imports.filter((i) => i.kind === 'dynamic-import' && i.external).map((i) => i.path));
if (dynamic.length > 0) throw new Error(`the CLI bundle keeps dynamic import() of ${dynamic.join(', ')}: import them statically`);
await build({ ...common, entryPoints: [join(root, 'dist/src/cli/launcher.js')], outfile: join(root, 'dist/cli/krgo.cjs') });
await chmod(join(root, 'dist/cli/krgo.cjs'), 0o755);
// The `krgo` command itself (package.json's bin): a shell script that starts node on the launcher.
await copyFile(join(root, 'src/cli/krgo.sh'), join(root, 'dist/cli/krgo'));
await chmod(join(root, 'dist/cli/krgo'), 0o755);
