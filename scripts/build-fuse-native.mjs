// Rebuilds fuse-native from source with file names crossing between C and JavaScript as Latin-1
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
// npm puts its node-gyp on PATH for install scripts, configured with the machine's Node headers.
execFileSync('node-gyp', ['rebuild'], { cwd: dir, stdio: 'inherit' });
