import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { packageOf, pythonImports, searchPath } from '../../../src/vfs/python-imports.js';
import { PythonPrefetcher } from '../../../src/vfs/python-prefetch.js';
import { pythonCommandIn, pythonCommandModules } from '../../../src/vfs/python-command.js';
import { MergedTree, type Inode } from '../../../src/vfs/merged-tree.js';
import { buildLayerIndex } from '../../../src/index/layer-index.js';
import { decodeIndex, encodeIndex, MAX_DEPS } from '../../../src/index/index-codec.js';
import { elfFromDeps } from '../../../src/index/file-hints.js';
import { buildTar } from '../../../src/tar/tar-writer.js';
import { sha256Of } from '../../../src/digest.js';
import { indexedTree } from '../../support/indexed-tree.js';

const STDLIB = '/usr/lib/python3.11';


/** The directories down to the stdlib, then `files` (path under the stdlib, source). */
function stdlibTar(files: [string, string][], extra: Parameters<typeof buildTar>[0] = []): Buffer {
  const dirs = new Set<string>();
  for (const [path] of files) for (let at = path.indexOf('/'); at >= 0; at = path.indexOf('/', at + 1)) dirs.add(path.slice(0, at));
  return buildTar([
    { path: './usr/', type: 'dir' },
    { path: './usr/lib/', type: 'dir' },
    { path: `.${STDLIB}/`, type: 'dir' },
    ...[...dirs].sort().map((d) => ({ path: `.${STDLIB}/${d}/`, type: 'dir' as const })),
    ...files.map(([path, text]) => ({ path: `.${STDLIB}/${path}`, type: 'file' as const, content: Buffer.from(text) })),
    ...extra,
  ]);
}

describe('python imports (what a module loads when it runs)', () => {
  it('reads top-level import statements and those of top-level try bodies, relative ones against the package', () => {
    const source = [
      'import os, sys as system',
      'import xml.etree.ElementTree as ET',
      'from . import errors',
      'from .utils import (parse,',
      '    format as fmt)  # a comment',
      'from ..shared import tool',
      'from collections import \\',
      '    OrderedDict',
      'def f():',
      '    import lazy_inside_a_function',
      'try:',
      '    import accelerator_in_a_try',
      '    if x:',
      '        import nested_deeper',
      'except ImportError:',
      '    import fallback_in_except',
      'if False:',
      '    from never import x',
      "text = 'import nothing'",
    ].join('\n');
    assert.deepEqual(pythonImports(source, 'email.mime'), [
      { module: 'os', names: [] },
      { module: 'sys', names: [] },
      { module: 'xml.etree.ElementTree', names: [] },
      { module: 'email.mime', names: ['errors'] },
      { module: 'email.mime.utils', names: ['parse', 'format'] },
      { module: 'email.shared', names: ['tool'] },
      { module: 'collections', names: ['OrderedDict'] },
      { module: 'accelerator_in_a_try', names: [] },
    ]);
    assert.deepEqual(pythonImports('from ... import too_far', 'a'), [], 'a relative import above the top is skipped');
  });

  it('knows the search path and the package of a module file', () => {
    assert.deepEqual(searchPath(`${STDLIB}/json/decoder.py`), [STDLIB, `${STDLIB}/lib-dynload`, '/usr/local/lib/python3.11/dist-packages', '/usr/lib/python3/dist-packages', `${STDLIB}/site-packages`]);
    assert.equal(searchPath('/srv/app/main.py'), undefined);
    const roots = searchPath(`${STDLIB}/x.py`)!;
    assert.equal(packageOf(`${STDLIB}/json/decoder.py`, roots), 'json');
    assert.equal(packageOf(`${STDLIB}/json/__init__.py`, roots), 'json');
    assert.equal(packageOf(`${STDLIB}/os.py`, roots), '');
  });

  it('with hints from the index, a first read fetches the whole import tree at once, without reading a byte', async () => {
    const py = (path: string, text: string) => ({ path: `.${STDLIB}/${path}`, type: 'file' as const, content: Buffer.from(text) });
    const elf = readFileSync('/usr/bin/ls');
    const tar = buildTar([
      { path: './usr/', type: 'dir' },
      { path: './usr/bin/', type: 'dir' },
      { path: './usr/bin/ls', type: 'file', content: elf, mode: 0o755 },
      { path: './usr/lib/', type: 'dir' },
      { path: `.${STDLIB}/`, type: 'dir' },
      { path: `.${STDLIB}/pkg/`, type: 'dir' },
      { path: `.${STDLIB}/pkg/__pycache__/`, type: 'dir' },
      { path: `.${STDLIB}/lib-dynload/`, type: 'dir' },
      py('app.py', 'import pkg.sub\nfrom helper import thing\n'),
      py('pkg/__init__.py', 'from . import base\n'),
      py('pkg/base.py', 'import _speedups\n'),
      py('pkg/sub.py', 'import helper\n'),
      { path: `.${STDLIB}/pkg/__pycache__/sub.cpython-311.pyc`, type: 'file', content: Buffer.from('compiled') },
      py('helper.py', 'def thing(): import unrelated\n'),
      py('unrelated.py', ''),
      { path: `.${STDLIB}/lib-dynload/_speedups.cpython-311-x86_64-linux-gnu.so`, type: 'file', content: elf },
    ]);
    const blob = gzipSync(tar);
    const index = decodeIndex(encodeIndex(await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length)));
    const ls = index.entries.find((e) => e.path === './usr/bin/ls')!;
    assert.ok(ls.deps?.includes('elf-needed:libc.so.6'), `ls needs libc: ${ls.deps?.join(' ')}`);
    assert.ok(elfFromDeps(ls.deps!)?.interpreter?.includes('ld-linux'), 'and names its loader');
    assert.deepEqual(index.entries.find((e) => e.path.endsWith('/app.py'))!.deps, ['py:pkg.sub', 'py:helper', 'py:helper.thing'], 'kept through the index file');

    const tree = new MergedTree();
    await tree.addLayerEntries(index.entries);
    const fetched: string[] = [];
    let batches = 0;
    const pathOf = new Map<number, string>();
    for (const [path, inode] of tree.walk()) pathOf.set(inode.ino, path);
    const prefetcher = new PythonPrefetcher(
      tree,
      () => Promise.reject(new Error('hints make reads unnecessary')),
      (inodes: Inode[]) => (batches++, fetched.push(...inodes.map((inode) => pathOf.get(inode.ino)!))),
    );
    prefetcher.opened(tree.lookup(`${STDLIB}/app.py`)!, `${STDLIB}/app.py`);
    await new Promise((r) => setImmediate(r));
    assert.equal(batches, 1, 'the whole import tree in one batch: the reader plans its requests together');
    assert.deepEqual(fetched.sort(), [
      `${STDLIB}/helper.py`,
      `${STDLIB}/lib-dynload/_speedups.cpython-311-x86_64-linux-gnu.so`,
      `${STDLIB}/pkg/__init__.py`,
      `${STDLIB}/pkg/__pycache__/sub.cpython-311.pyc`,
      `${STDLIB}/pkg/base.py`,
    ], 'packages on the way, the compiled file instead of its source, the extension module; nothing imported lazily');
  });

  it('a script outside the installation: its own directory first, then the one installation', async () => {
    const tar = stdlibTar(
      [
        ['json/__init__.py', 'from .decoder import JSONDecoder\n'],
        ['json/decoder.py', ''],
      ],
      [
        { path: './srv/', type: 'dir' },
        { path: './srv/app/', type: 'dir' },
        { path: './srv/app/main.py', type: 'file', content: Buffer.from('import json\nimport helpers\n') },
        { path: './srv/app/helpers.py', type: 'file', content: Buffer.from('') },
      ],
    );
    const blob = gzipSync(tar);
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length);
    assert.deepEqual(index.entries.find((e) => e.path === './srv/app/main.py')!.deps, ['py:json', 'py:helpers']);
    const tree = new MergedTree();
    await tree.addLayerEntries(index.entries);
    const pathOf = new Map<number, string>();
    for (const [path, inode] of tree.walk()) pathOf.set(inode.ino, path);
    const fetched: string[] = [];
    new PythonPrefetcher(tree, () => Promise.reject(new Error('not needed')), (inodes: Inode[]) => fetched.push(...inodes.map((inode) => pathOf.get(inode.ino)!))).opened(tree.lookup('/srv/app/main.py')!, '/srv/app/main.py');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(fetched.sort(), ['/srv/app/helpers.py', `${STDLIB}/json/__init__.py`, `${STDLIB}/json/decoder.py`]);
  });

  it('an index from elsewhere keeps at most MAX_DEPS hints per file (they only feed prefetching)', async () => {
    const blob = gzipSync(buildTar([{ path: 'x.py', type: 'file', content: Buffer.from('') }]));
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length);
    const crafted = { ...index, entries: index.entries.map((e) => ({ ...e, deps: Array.from({ length: 100_000 }, (_, i) => `py:m${i}`) })) };
    assert.equal(decodeIndex(encodeIndex(crafted)).entries[0]!.deps!.length, MAX_DEPS);
  });

  it('reads what a CPython command line will import: -c CODE, -m MODULE, options before them', () => {
    assert.deepEqual(pythonCommandModules(['/usr/bin/python3', '-c', 'import json, ssl\nimport email.message\nprint(1)']), ['json', 'ssl', 'email.message']);
    assert.deepEqual(pythonCommandModules(['python3.11', '-m', 'http.server', '8000']), ['http.server']);
    assert.deepEqual(pythonCommandModules(['python3', '-Bc', 'import os']), ['os'], 'grouped flags');
    assert.deepEqual(pythonCommandModules(['python3', '-X', 'dev', '-W', 'ignore', '-u', '-m', 'venv']), ['venv'], 'options taking a value');
    assert.deepEqual(pythonCommandModules(['python3', '-mjson.tool']), ['json.tool'], 'the value joined to its flag');
    assert.deepEqual(pythonCommandModules(['python3', 'app.py', '-c', 'import x']), [], 'a script: what follows is its own');
    assert.deepEqual(pythonCommandModules(['perl', '-c', 'import x']), []);
    assert.deepEqual(pythonCommandModules(['python3', '-c']), []);
  });

  it('when an interpreter starts, the imports its command line names are fetched with theirs, once per process', async () => {
    const tar = stdlibTar([
      ['encodings/__init__.py', ''],
      ['json/__init__.py', 'from .decoder import JSONDecoder\n'],
      ['json/decoder.py', ''],
      ['ssl.py', ''],
      ['csv.py', ''],
    ]);
    const { tree, pathOf } = await indexedTree(tar);
    const fetched: string[] = [];
    let asked = 0;
    const processes = [
      { pid: 10, argv: ['/usr/bin/python3', '-c', 'import json, ssl'] },
      { pid: 11, argv: ['/bin/sh', '-c', 'python3 -c "import json"'] },
    ];
    const prefetcher = new PythonPrefetcher(
      tree,
      () => Promise.reject(new Error('hints make reads unnecessary')),
      (inodes: Inode[]) => fetched.push(...inodes.map((inode) => pathOf.get(inode.ino)!)),
      { commandLines: async () => (asked++, processes), commandLineOf: async () => undefined },
    );
    prefetcher.opened(tree.lookup(`${STDLIB}/encodings/__init__.py`)!, `${STDLIB}/encodings/__init__.py`);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(fetched.sort(), [`${STDLIB}/json/__init__.py`, `${STDLIB}/json/decoder.py`, `${STDLIB}/ssl.py`]);
    assert.equal(asked, 1);
    prefetcher.opened(tree.lookup(`${STDLIB}/encodings/__init__.py`)!, `${STDLIB}/encodings/__init__.py`);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(fetched.length, 3, 'a process already seen is not followed again');
    // The shell execs an interpreter under its own pid: a new command line, followed.
    processes[1] = { pid: 11, argv: ['/usr/bin/python3', '-c', 'import csv'] };
    prefetcher.opened(tree.lookup(`${STDLIB}/encodings/__init__.py`)!, `${STDLIB}/encodings/__init__.py`);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(fetched.slice(3), [`${STDLIB}/csv.py`]);
  });

  it('when an interpreter binary is first read (its exec), its command line is read at once: from a wrapper, or once the exec shows', async () => {
    const tar = stdlibTar(
      [
        ['json/__init__.py', 'from .decoder import JSONDecoder\n'],
        ['json/decoder.py', ''],
        ['ssl.py', ''],
        ['csv.py', ''],
      ],
      [
        { path: './usr/bin/', type: 'dir' },
        { path: './usr/bin/python3.11', type: 'file', content: Buffer.from('\x7fELF') },
      ],
    );
    const { tree, pathOf } = await indexedTree(tar);
    const binary = tree.lookup('/usr/bin/python3.11')!;
    const run = async (processes: { pid: number; argv: string[] }[], later: Map<number, string[]>) => {
      const fetched: string[] = [];
      let looks = 0;
      const prefetcher = new PythonPrefetcher(
        tree,
        () => Promise.reject(new Error('hints make reads unnecessary')),
        (inodes: Inode[]) => fetched.push(...inodes.map((inode) => pathOf.get(inode.ino)!)),
        { commandLines: async () => processes, commandLineOf: async (pid) => (looks++ >= 3 ? later.get(pid) : processes.find((p) => p.pid === pid)?.argv) },
      );
      prefetcher.opened(binary, '/usr/bin/python3.11');
      for (let i = 0; i < 100 && fetched.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      return { fetched: fetched.sort(), looks };
    };
    // chroot DIR python3 -c …: the wrapper's command line ends with the interpreter's; no waiting.
    const wrapped = await run([{ pid: 20, argv: ['chroot', '/mnt', '/usr/bin/python3', '-c', 'import json, ssl'] }], new Map());
    assert.deepEqual(wrapped.fetched, [`${STDLIB}/json/__init__.py`, `${STDLIB}/json/decoder.py`, `${STDLIB}/ssl.py`]);
    assert.equal(wrapped.looks, 0);
    // sh -c 'python3 -c …' names it in a string: the process is watched until its exec shows.
    const shell = await run([{ pid: 21, argv: ['/bin/sh', '-c', 'python3 -c "import csv"'] }], new Map([[21, ['python3', '-c', 'import csv']]]));
    assert.deepEqual(shell.fetched, [`${STDLIB}/csv.py`]);
    assert.ok(shell.looks >= 4, 'looked at until its command line changed');
    assert.deepEqual(pythonCommandIn(['env', 'A=1', 'python3.11', 'app.py']), ['python3.11', 'app.py']);
    assert.equal(pythonCommandIn(['/bin/sh', '-c', 'python3 app.py']), undefined);
  });
});
