import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeCachePath, commandWord } from '../../../src/util/code-cache.js';
import { runOk } from '../../support/run.js';
import { tempDir } from '../../support/temp.js';
import { krgo } from '../../support/krgo-cli.js';

const CODE_CACHE_MODULE = fileURLToPath(new URL('../../../src/util/code-cache.js', import.meta.url));

/** A CommonJS file with functions worth caching; prints what Node gives a file it runs. */
const BUNDLE = `#!/usr/bin/env node
const { basename } = require('node:path');
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
process.stdout.write(JSON.stringify({ file: basename(__filename), dir: __dirname, fib: fib(15), exports: typeof module.exports }) + '\\n');
`;

/** Another path through a bundle: functions a first run never compiled. */
const MORE = Array.from({ length: 40 }, (_, i) => `function more${i}(x) { const parts = []; for (let k = 0; k < x; k++) parts.push(String(k * ${i}).padStart(4, '0')); return parts.join('-').length; }`).join('\n');
const BRANCHED = `${BUNDLE}
${MORE}
if (process.env.KRGO_TEST_OTHER_PATH) process.stdout.write('# ' + [${Array.from({ length: 40 }, (_, i) => `more${i}(3)`).join(', ')}].join(',') + '\\n');
`;

/** Compiles and runs `bundle` in a process of its own (as the CLI does), then saves its cache. */
async function runCompiled(bundle: string, cacheFile: string, env: NodeJS.ProcessEnv = {}): Promise<{ ran: { file: string; dir: string; fib: number; exports: string }; rejected: boolean | null; saved: boolean }> {
  const driver = `import { compileWithCodeCache } from ${JSON.stringify(CODE_CACHE_MODULE)};
const compiled = compileWithCodeCache(${JSON.stringify(bundle)}, ${JSON.stringify(cacheFile)});
compiled.run();
process.stdout.write(JSON.stringify({ rejected: compiled.rejected ?? null, saved: compiled.save() }) + '\\n');`;
  const { stdout } = await runOk(process.execPath, ['--input-type=module', '-e', driver], { env: { ...process.env, ...env } });
  const [ran, outcome] = stdout
    .trim()
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { ran: ran as { file: string; dir: string; fib: number; exports: string }, ...(outcome as { rejected: boolean | null; saved: boolean }) };
}

describe('V8 code cache of the CLI bundle', () => {
  it('is written by the first run, taken by the next, and written again when V8 refuses it', async () => {
    const tmp = await tempDir('code-cache');
    try {
      const bundle = join(tmp.path, 'bundle.cjs');
      await writeFile(bundle, BUNDLE);
      const cacheFile = codeCachePath(join(tmp.path, 'cache'), bundle, 'mount');
      const first = await runCompiled(bundle, cacheFile);
      assert.deepEqual(first.ran, { file: 'bundle.cjs', dir: tmp.path, fib: 610, exports: 'object' }, 'runs as Node runs a file, #! line and all');
      assert.equal(first.rejected, null, 'no cache yet');
      assert.equal(first.saved, true);
      const written = await stat(cacheFile);
      assert.ok(written.size > 0);

      const second = await runCompiled(bundle, cacheFile);
      assert.equal(second.ran.fib, 610);
      assert.equal(second.rejected, false, 'V8 took the cache');
      assert.equal(second.saved, false, 'a cache V8 took is not written again');
      assert.equal((await stat(cacheFile)).mtimeMs, written.mtimeMs);

      await writeFile(cacheFile, Buffer.alloc(written.size, 0x5a));
      const damaged = await runCompiled(bundle, cacheFile);
      assert.equal(damaged.ran.fib, 610, 'a damaged cache costs only the compile');
      assert.equal(damaged.rejected, true);
      assert.equal(damaged.saved, true);
      assert.equal((await runCompiled(bundle, cacheFile)).rejected, false, 'rewritten whole');
    } finally {
      await tmp.remove();
    }
  });

  it('grows when a run takes a path the cache does not hold, and never shrinks', async () => {
    const tmp = await tempDir('code-cache');
    try {
      const bundle = join(tmp.path, 'bundle.cjs');
      await writeFile(bundle, BRANCHED);
      const cacheFile = codeCachePath(join(tmp.path, 'cache'), bundle, 'mount');
      assert.equal((await runCompiled(bundle, cacheFile)).saved, true);
      const first = (await stat(cacheFile)).size;
      const other = await runCompiled(bundle, cacheFile, { KRGO_TEST_OTHER_PATH: '1' });
      assert.equal(other.rejected, false);
      assert.equal(other.saved, true, 'the other path compiled 40 functions the cache lacked');
      const grown = (await stat(cacheFile)).size;
      assert.ok(grown > first * 1.1, `${grown} > ${first}`);
      assert.equal((await runCompiled(bundle, cacheFile, { KRGO_TEST_OTHER_PATH: '1' })).saved, false, 'nothing new the second time');
      assert.equal((await runCompiled(bundle, cacheFile)).saved, false, 'a run on the shorter path does not shrink it');
      assert.equal((await stat(cacheFile)).size, grown);
    } finally {
      await tmp.remove();
    }
  });

  it('never meets a rebuilt bundle, and a new cache replaces the command’s old one', async () => {
    const tmp = await tempDir('code-cache');
    try {
      const bundle = join(tmp.path, 'bundle.cjs');
      const cacheDir = join(tmp.path, 'cache');
      await writeFile(bundle, BUNDLE);
      const before = codeCachePath(cacheDir, bundle, 'mount');
      await runCompiled(bundle, before);
      await runCompiled(bundle, codeCachePath(cacheDir, bundle, 'pull'));
      // The same length, other code (V8 checks only the length): another name.
      await writeFile(bundle, BUNDLE.replace('fib(15)', 'fib(14)'));
      await utimes(bundle, new Date(), new Date(Date.now() + 5000));
      const after = codeCachePath(cacheDir, bundle, 'mount');
      assert.notEqual(after, before);
      const rebuilt = await runCompiled(bundle, after);
      assert.equal(rebuilt.ran.fib, 377, 'the new code ran, not the cached one');
      assert.equal(rebuilt.rejected, null);
      const left = await readdir(cacheDir);
      assert.equal(left.length, 2, left.join(' '));
      assert.ok(left.some((name) => name.startsWith('pull-')), 'other commands keep theirs');
      assert.ok(left.includes(after.slice(cacheDir.length + 1)));
    } finally {
      await tmp.remove();
    }
  });

  it('runs without a cache where none can be written', async () => {
    const tmp = await tempDir('code-cache');
    try {
      const bundle = join(tmp.path, 'bundle.cjs');
      await writeFile(bundle, BUNDLE);
      await writeFile(join(tmp.path, 'not-a-dir'), '');
      const outcome = await runCompiled(bundle, codeCachePath(join(tmp.path, 'not-a-dir'), bundle, 'mount'));
      assert.equal(outcome.ran.fib, 610);
      assert.equal(outcome.saved, false);
      assert.deepEqual((await readdir(tmp.path)).sort(), ['bundle.cjs', 'not-a-dir']);
    } finally {
      await tmp.remove();
    }
  });

  it('keys the cache by the command word', () => {
    assert.equal(commandWord(['mount', 'debian', '/mnt']), 'mount');
    assert.equal(commandWord(['--version']), 'krgo');
    assert.equal(commandWord([]), 'krgo');
    assert.equal(commandWord(['../../etc']), 'krgo', 'never a path');
    assert.equal(commandWord(['x'.repeat(40)]), 'krgo');
  });

  it('the krgo command keeps one per command it ran, and runs without one when told', async () => {
    const version = JSON.parse(await readFile(fileURLToPath(new URL('../../../../package.json', import.meta.url)), 'utf8')) as { version: string };
    const cacheDir = fileURLToPath(new URL('../../../cli/code-cache', import.meta.url));
    const plain = await krgo(['--version'], { KRGO_NO_CODE_CACHE: '1' });
    assert.equal(plain.stdout.trim(), version.version);
    const cached = await krgo(['status', '--help']);
    assert.equal(cached.code, 0, cached.stderr);
    const name = (await readdir(cacheDir)).find((n) => n.startsWith('status-'));
    assert.ok(name, 'written by the first run');
    const written = await stat(join(cacheDir, name));
    const again = await krgo(['status', '--help']);
    assert.equal(again.stdout, cached.stdout);
    // A refused cache is written again: the same file means V8 took it (the CLI's own V8 flags
    // are set before the compile, so the next run starts under the flags the cache was made with).
    const after = await stat(join(cacheDir, name));
    assert.deepEqual([after.ino, after.mtimeMs], [written.ino, written.mtimeMs]);
  });
});
