import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { tempDir } from '../support/temp.js';
import { run, runOk } from '../support/run.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

/** The README's `npm install -g .`, from a fresh clone (no node_modules, no dist, no build). */
describe('npm install -g . from a fresh clone', () => {
  it('installs a working krgo (compiled, native addon and FUSE binding built)', async () => {
    const tmp = await tempDir('global-install');
    try {
      const clone = join(tmp.path, 'clone');
      await runOk('git', ['clone', '-q', REPO, clone]);
      const prefix = join(tmp.path, 'prefix');
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
      const install = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '.'], { cwd: clone, env, timeoutMs: 600_000 });
      assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`);
      const version = await run(join(prefix, 'bin', 'krgo'), ['--version'], { env });
      assert.equal(version.code, 0, version.stderr);
      const { version: expected } = JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as { version: string };
      assert.equal(version.stdout.trim(), expected);
      const help = await run(join(prefix, 'bin', 'krgo'), ['mount', '--help'], { env });
      assert.equal(help.code, 0, help.stderr);
      assert.match(await readFile(join(clone, 'node_modules', 'fuse-native', 'fuse-native.c'), 'utf8'), /KRGO_LATIN1/, 'the FUSE binding is the one that keeps name bytes');
    } finally {
      await tmp.remove();
    }
  });
});
