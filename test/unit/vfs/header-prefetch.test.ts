import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { includedHeaders, includeSearchPath } from '../../../src/vfs/c-includes.js';
import { HeaderPrefetcher } from '../../../src/vfs/header-prefetch.js';
import type { Inode, MergedTree } from '../../../src/vfs/merged-tree.js';
import { buildTar } from '../../../src/tar/tar-writer.js';
import { indexedTree } from '../../support/indexed-tree.js';

const CXX = '/usr/include/c++/12';
const CXX_ARCH = '/usr/include/x86_64-linux-gnu/c++/12';
const GCC = '/usr/lib/gcc/x86_64-linux-gnu/12/include';

const FILES: Record<string, string> = {
  [`${CXX}/iostream`]: '#ifndef _IOSTREAM\n#define _IOSTREAM 1\n#include <bits/c++config.h>\n#include <ostream>\n#if __cplusplus > 201703L\n# include <compare>\n#endif\n#endif\n',
  [`${CXX}/ostream`]: '#pragma once\n  #  include_next <iostream>\n#include <cstdlib>\n#include INCLUDE_BY_MACRO\n#include <missing.h>\n// #include <commented.h>\n',
  [`${CXX}/compare`]: '#include "bits/cmp.h"\n',
  [`${CXX}/bits/cmp.h`]: '#include "local.h"\n',
  [`${CXX}/bits/local.h`]: '/* beside the file that quotes it */\n',
  [`${CXX}/cstdlib`]: '#include <stdlib.h>\n',
  [`${CXX}/stdlib.h`]: '#include_next <stdlib.h>\n',
  [`${CXX_ARCH}/bits/c++config.h`]: '#include <bits/os_defines.h>\n',
  [`${CXX_ARCH}/bits/os_defines.h`]: '#include <features.h>\n',
  [`${GCC}/stddef.h`]: '/* the compiler\'s own */\n',
  '/usr/include/stdlib.h': '#include <features.h>\n#include <stddef.h>\n',
  '/usr/include/features.h': '#include <stdc-predef.h>\n',
  '/usr/include/stdc-predef.h': '',
  '/usr/include/app.h': '#include <stdlib.h>\n',
  '/usr/include/bits/local.h': '/* another local.h: not the one "local.h" in bits/cmp.h names */\n',
  '/srv/include-me.h': '#include <stdlib.h>\n',
};

/** GCC 12's headers as Debian lays them out (a few of each kind), in one indexed layer. */
async function headerTree(): Promise<{ tree: MergedTree; pathOf: Map<number, string> }> {
  const dirs = new Set<string>();
  for (const path of Object.keys(FILES)) for (let at = path.indexOf('/', 1); at > 0; at = path.indexOf('/', at + 1)) dirs.add(path.slice(0, at));
  const tar = buildTar([
    ...[...dirs].sort().map((dir) => ({ path: `.${dir}/`, type: 'dir' as const })),
    ...Object.entries(FILES).map(([path, text]) => ({ path: `.${path}`, type: 'file' as const, content: Buffer.from(text) })),
  ]);
  return indexedTree(tar);
}

/** A prefetcher whose reads come from FILES, and the batches it fetched (as paths). */
async function prefetcher(): Promise<{ tree: MergedTree; headers: HeaderPrefetcher; fetched: string[][]; reads: string[] }> {
  const { tree, pathOf } = await headerTree();
  const fetched: string[][] = [];
  const reads: string[] = [];
  const read = (inode: Inode) => {
    const path = pathOf.get(inode.ino)!;
    reads.push(path);
    return Promise.resolve(Buffer.from(FILES[path]!));
  };
  const headers = new HeaderPrefetcher(tree, read, (inodes) => fetched.push(inodes.map((i) => pathOf.get(i.ino)!)));
  return { tree, headers, fetched, reads };
}

/** Until the walk's reads (resolved at once here) have all been followed. */
const settled = async () => {
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
};

describe('C and C++ headers (what a compiler reads next)', () => {
  it('reads #include <…>, "…" and #include_next lines, under #if too; not a macro, not a comment', () => {
    assert.deepEqual(includedHeaders(FILES[`${CXX}/ostream`]!), [
      { name: 'iostream', quoted: false },
      { name: 'cstdlib', quoted: false },
      { name: 'missing.h', quoted: false },
    ]);
    assert.deepEqual(includedHeaders(FILES[`${CXX}/iostream`]!).map((i) => i.name), ['bits/c++config.h', 'ostream', 'compare']);
    assert.deepEqual(includedHeaders('#include "a.h"\n#include<b.h>\nint x; #include <not-at-line-start.h>\n'), [
      { name: 'a.h', quoted: true },
      { name: 'b.h', quoted: false },
    ]);
  });

  it('searches as GCC does on Debian: libstdc++ first for C++, then the compiler, /usr/local, multiarch, /usr/include', () => {
    const installs = [{ triplet: 'x86_64-linux-gnu', version: '12' }];
    assert.deepEqual(includeSearchPath(installs, true), [CXX, CXX_ARCH, `${CXX}/backward`, GCC, '/usr/local/include', '/usr/include/x86_64-linux-gnu', '/usr/include']);
    assert.deepEqual(includeSearchPath(installs, false), [GCC, '/usr/local/include', '/usr/include/x86_64-linux-gnu', '/usr/include']);
  });

  it('a first read of <iostream> fetches what it includes at once, then each level as its bytes arrive, every match of a name', async () => {
    const { tree, headers, fetched, reads } = await prefetcher();
    headers.opened(tree.lookup(`${CXX}/iostream`)!, `${CXX}/iostream`);
    await settled();
    assert.deepEqual(fetched, [
      [`${CXX_ARCH}/bits/c++config.h`, `${CXX}/ostream`, `${CXX}/compare`],
      [`${CXX_ARCH}/bits/os_defines.h`],
      // <cstdlib> from ostream; its <iostream> is the one walked from already; <missing.h> is nowhere.
      [`${CXX}/cstdlib`],
      // "bits/cmp.h" is beside compare.
      [`${CXX}/bits/cmp.h`],
      ['/usr/include/features.h'],
      // <stdlib.h> names libstdc++'s wrapper and the C library's header it includes next.
      [`${CXX}/stdlib.h`, '/usr/include/stdlib.h'],
      // "local.h" beside bits/cmp.h, not /usr/include/bits/local.h.
      [`${CXX}/bits/local.h`],
      ['/usr/include/stdc-predef.h'],
      [`${GCC}/stddef.h`],
    ]);
    assert.equal(new Set(reads).size, reads.length, 'each header read once');
    headers.opened(tree.lookup(`${CXX}/ostream`)!, `${CXX}/ostream`);
    await settled();
    assert.equal(fetched.length, 9, 'a header already walked starts nothing');
  });

  it("a C header's walk leaves libstdc++ out; a header outside the search path, or too large, starts none", async () => {
    const { tree, headers, fetched } = await prefetcher();
    headers.opened(tree.lookup('/srv/include-me.h')!, '/srv/include-me.h');
    await settled();
    assert.deepEqual(fetched, [], 'not under an include directory');
    headers.opened(tree.lookup('/usr/include/app.h')!, '/usr/include/app.h');
    await settled();
    assert.deepEqual(fetched, [['/usr/include/stdlib.h'], ['/usr/include/features.h', `${GCC}/stddef.h`], ['/usr/include/stdc-predef.h']]);
    const large = { ...tree.lookup(`${CXX}/iostream`)!, ino: 1_000_000, size: 2 * 1024 * 1024 };
    headers.opened(large, `${CXX}/iostream`);
    await settled();
    assert.equal(fetched.length, 3);
  });
});
