// `npm run build`, after tsc: bundles the compiled CLI (dist/src/cli/main.js) with its
// dependencies into one CommonJS file, dist/cli/krgo-main.cjs, run by the launcher
// (dist/cli/krgo.cjs, from src/cli/launcher.ts) with V8's code cache (src/util/code-cache.ts);
// the `krgo` command (dist/cli/krgo, from src/cli/krgo.sh) starts node on the launcher.
// One file instead of ~150 ES modules and undici's parts: Node resolves, reads and links far
// fewer files before the first request leaves (a mount's ready time, and every command's
// start). What a command imports on demand is still evaluated only when imported.
import { build } from 'esbuild';
import { chmod, copyFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Modules a command's start does not need, loaded at their first use instead of when the bundle
 * starts: before a mount's first request leaves, the CPU is on its critical path, and these are
 * ~20 ms of it (native-notes/cli-startup.md). child_process is for spawning (commander loads it
 * for subcommands krgo does not have), crypto for hashing once data is in, and undici's HTTP/2
 * client is used only when a server picks h2 by ALPN, which krgo never offers. Each is replaced
 * by a stand-in that loads the real module when a property is read or it is called; code that
 * reads a property at load time (destructuring) simply loads it then.
 */
const LAZY_BUILTINS = /^(node:)?(child_process|crypto)$/;
const LAZY_FILES = /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/;
const lazyModules = {
  name: 'lazy-modules',
  setup(build) {
    // Only imports that may name one of them are looked at (and resolved a second time); the
    // stand-ins' own requires, and that second resolution, reach the real modules.
    build.onResolve({ filter: new RegExp(`${LAZY_BUILTINS.source}|client-h2\\.js$`) }, async (args) => {
      if (args.namespace === 'lazy' || args.pluginData === 'real') return undefined;
      if (LAZY_BUILTINS.test(args.path)) return { path: args.path, namespace: 'lazy', pluginData: { target: args.path, builtin: true } };
      const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'real' });
      if (!LAZY_FILES.test(resolved.path)) return undefined;
      // Relative to the package: no path of the build machine ends up in the bundle.
      return { path: relative(root, resolved.path), namespace: 'lazy', pluginData: { target: resolved.path, builtin: false } };
    });
    build.onLoad({ filter: /./, namespace: 'lazy' }, (args) => {
      const { target, builtin } = args.pluginData;
      // An ES module importing a CommonJS one gets a copy of its names (esbuild's __toESM), each
      // a getter reading the stand-in when used: for a built-in, the names are known here (this
      // node's), so the copy loads nothing; the rest are only required from CommonJS.
      const names = builtin ? JSON.stringify(Object.getOwnPropertyNames(createRequire(import.meta.url)(target))) : 'undefined';
      return {
        resolveDir: root,
        loader: 'js',
        contents: `let real;
const load = () => (real ??= require(${JSON.stringify(target)}));
const names = ${names};
module.exports = new Proxy(() => undefined, {
  get: (_, key) => load()[key],
  has: (_, key) => key in load(),
  apply: (_, self, args) => Reflect.apply(load(), self, args),
  ownKeys: () => names ?? Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    if (names) return names.includes(key) ? { get: () => load()[key], enumerable: true, configurable: true } : undefined;
    const found = Reflect.getOwnPropertyDescriptor(load(), key);
    return found && { ...found, configurable: true };
  },
});
`,
      };
    });
  },
};

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
  plugins: [lazyModules],
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
