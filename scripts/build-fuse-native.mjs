// Rebuilds fuse-native from source with stat times to the nanosecond, and file names crossing between C and JavaScript as Latin-1
// strings (one character per byte) instead of UTF-8, so names that are not UTF-8 keep their bytes
// (see native-notes/fuse.md). Runs from `npm install` (the package's install script), after the
// dependencies are in. Each edit must match the source exactly, or this fails loudly.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const dir = dirname(require.resolve('fuse-native/package.json'));
const source = join(dir, 'fuse-native.c');
const MARKER = 'KRGO_LATIN1';
let text = readFileSync(source, 'utf8');
if (!text.includes(MARKER)) {
  const edit = (from, to, count) => {
    const found = text.split(from).length - 1;
    if (found !== count) throw new Error(`fuse-native.c: expected ${count} of ${JSON.stringify(from)}, found ${found}`);
    text = text.split(from).join(to);
  };
  edit('#include <napi-macros.h>\n', `#include <napi-macros.h>

// krgo: names cross as Latin-1 strings, one character per byte, so names that are not UTF-8
// keep their bytes both ways.
#define ${MARKER}(name, size, val) \\
  char name[size]; \\
  size_t name##_len; \\
  if (napi_get_value_string_latin1(env, val, (char *) &name, size, &name##_len) != napi_ok) { \\
    napi_throw_error(env, "EINVAL", "Expected string"); \\
    return NULL; \\
  }
`, 1);
  edit('napi_create_string_utf8(env, l->path,', 'napi_create_string_latin1(env, l->path,', 34);
  edit('napi_create_string_utf8(env, l->name,', 'napi_create_string_latin1(env, l->name,', 5);
  edit('napi_create_string_utf8(env, l->dest,', 'napi_create_string_latin1(env, l->dest,', 3);
  edit('      NAPI_UTF8(name, 1024, raw_name)', `      ${MARKER}(name, 1024, raw_name)`, 2);
  edit('  NAPI_ARGV_UTF8(linkname, l->len, 2)', `  ${MARKER}(linkname, l->len, argv[2])`, 1);
  writeFileSync(source, text);
}
// krgo: stat times to the nanosecond. fuse-native packs them as milliseconds (a double cannot
// hold nanoseconds since 1970 exactly); three more slots carry the nanoseconds below the
// millisecond, added to tv_nsec (see native-notes/fuse.md).
const NSEC_MARKER = 'KRGO_NSEC';
if (!text.includes(NSEC_MARKER)) {
  const edit = (from, to, count) => {
    const found = text.split(from).length - 1;
    if (found !== count) throw new Error(`fuse-native.c: expected ${count} of ${JSON.stringify(from)}, found ${found}`);
    text = text.split(from).join(to);
  };
  edit('  uint32s_to_timespec(&stat->st_ctim, &ints);\n#endif\n', `  uint32s_to_timespec(&stat->st_ctim, &ints);
  // ${NSEC_MARKER}: nanoseconds below the millisecond, in three slots after the times.
  stat->st_atim.tv_nsec += *ints++;
  stat->st_mtim.tv_nsec += *ints++;
  stat->st_ctim.tv_nsec += *ints++;
#endif
`, 1);
  writeFileSync(source, text);
}
const script = join(dir, 'index.js');
let js = readFileSync(script, 'utf8');
if (!js.includes(NSEC_MARKER)) {
  const edit = (from, to) => {
    if (js.split(from).length !== 2) throw new Error(`fuse-native index.js: expected one ${JSON.stringify(from)}`);
    js = js.replace(from, to);
  };
  edit('  const ints = new Uint32Array(18)\n', '  const ints = new Uint32Array(21)\n');
  edit('  setDoubleInt(ints, 16, toDateMS(stat && stat.ctime))\n', `  setDoubleInt(ints, 16, toDateMS(stat && stat.ctime))
  // ${NSEC_MARKER}: nanoseconds below the millisecond (patched in by krgo's build-fuse-native.mjs).
  ints[18] = (stat && stat.atimeSubMsNs) || 0
  ints[19] = (stat && stat.mtimeSubMsNs) || 0
  ints[20] = (stat && stat.ctimeSubMsNs) || 0
`);
  writeFileSync(script, js);
}
// npm puts its node-gyp on PATH for install scripts, configured with the machine's Node headers.
execFileSync('node-gyp', ['rebuild'], { cwd: dir, stdio: 'inherit' });
