import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { KRGO_BIN, krgo } from '../support/krgo-cli.js';
import { run } from '../support/run.js';
import { tempDir } from '../support/temp.js';

describe('the command line', () => {
  it('mount -d: the background process that mounts runs with the node flags krgo was started with', async () => {
    // A registry that takes the connection and never answers: the mount waits while we look.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const dir = await tempDir('cmdline');
    await mkdir(join(dir.path, 'mnt'));
    const held = `127.0.0.1:${(silent.address() as AddressInfo).port}/held:latest`;
    const mount = spawn(process.execPath, ['--max-old-space-size=700', KRGO_BIN, 'mount', '-d', held, join(dir.path, 'mnt'), '--cache-dir', join(dir.path, 'cache')], { stdio: 'ignore' });
    const exited = new Promise((resolve) => mount.once('exit', resolve));
    try {
      let argv: string[] = [];
      for (let i = 0; i < 200 && !argv.includes('-d'); i++) {
        await new Promise((r) => setTimeout(r, 25));
        const child = (await readFile(`/proc/${mount.pid}/task/${mount.pid}/children`, 'utf8').catch(() => '')).trim().split(' ')[0];
        argv = child ? (await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')).split('\0') : [];
      }
      assert.deepEqual(argv.slice(1, 5), ['--max-old-space-size=700', KRGO_BIN, 'mount', '-d'], argv.join(' '));
    } finally {
      // Stopping `mount -d` before ready stops its background process: nothing stays mounted.
      mount.kill('SIGTERM');
      await exited;
      silent.close();
      await dir.remove();
    }
  });

  it('the krgo command keeps NODE_EXTRA_CA_CERTS from node\'s start (krgo reads it at its first TLS connection)', async () => {
    // Node reads the file as it starts and warns when it cannot: that warning shows whether it did.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/extra.pem' };
    const direct = await run(process.execPath, [KRGO_BIN, '--version'], { env });
    assert.match(direct.stderr, /Ignoring extra certs from `\/nonexistent\/extra\.pem`/, 'node loads it when started on the launcher directly');
    const command = await krgo(['--version'], { NODE_EXTRA_CA_CERTS: '/nonexistent/extra.pem' });
    assert.equal(command.code, 0, command.stderr);
    assert.equal(command.stderr, '', 'the command starts node without it');
    assert.match(command.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('the CLI bundle loads node:crypto, node:child_process and undici\'s HTTP/2 client at their first use, not at start', async () => {
    const dir = await tempDir('lazy-modules');
    try {
      const probe = join(dir.path, 'probe.cjs');
      await writeFile(probe, "process.on('exit', () => require('node:fs').writeSync(2, JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule '))) + '\\n'));\n");
      const started = await run(process.execPath, ['--require', probe, KRGO_BIN, '--version']);
      assert.equal(started.code, 0, started.stderr);
      const loaded = JSON.parse(started.stderr) as string[];
      assert.ok(loaded.includes('NativeModule fs'), 'the probe sees what was loaded');
      for (const lazy of ['crypto', 'child_process', 'http2']) assert.ok(!loaded.includes(`NativeModule ${lazy}`), `${lazy} is not loaded by a command that does not use it`);
      // A mount sends its requests with undici's HTTP/1.1 client: its HTTP/2 one is never loaded.
      const silent = createServer((socket) => socket.once('data', () => mount.kill('SIGTERM')));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      await mkdir(join(dir.path, 'mnt'));
      const image = `127.0.0.1:${(silent.address() as AddressInfo).port}/held:latest`;
      const mount = spawn(process.execPath, ['--require', probe, KRGO_BIN, 'mount', image, join(dir.path, 'mnt'), '--cache-dir', join(dir.path, 'cache')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      mount.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      await new Promise((resolve) => mount.once('exit', resolve));
      silent.close();
      const mounting = JSON.parse(stderr.split('\n').find((line) => line.startsWith('[')) ?? '[]') as string[];
      assert.ok(mounting.includes('NativeModule _http_client'), `undici was loaded: ${stderr}`);
      assert.ok(!mounting.includes('NativeModule http2'), 'no HTTP/2');
    } finally {
      await dir.remove();
    }
  });

  it('a KRGO_TRACE_* file that cannot be written is one warning, and the command goes on', async () => {
    const res = await krgo(['--version'], { KRGO_TRACE_PHASES: '/nonexistent-dir/phases' });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.match(res.stderr, /^warning: KRGO_TRACE_PHASES: cannot write \/nonexistent-dir\/phases \(ENOENT[^\n]*\); that trace stops here\n$/);
  });

  it('--help lists every command and exits 0', async () => {
    const res = await krgo(['--help']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, '');
    for (const command of ['pull', 'mount', 'umount', 'status', 'index', 'materialize', 'commit', 'push', 'checkout']) {
      assert.match(res.stdout, new RegExp(`^  ${command} `, 'm'), `${command} is listed`);
    }
  });

  it("each command's help explains it, with examples where they help", async () => {
    const commit = await krgo(['commit', '--help']);
    assert.equal(commit.code, 0);
    assert.match(commit.stdout, /whiteouts/);
    assert.match(commit.stdout, /Refused when nothing changed/);
    const pull = await krgo(['pull', '--help']);
    assert.match(pull.stdout, /-g, --git/);
    assert.match(pull.stdout, /layer_<n>_<digest>/);
  });

  it('a usage error is reported on stderr with a non-zero status', async () => {
    const res = await krgo(['commit', '-r', '/nonexistent-rootfs', '-m', 'x']);
    assert.equal(res.code, 9);
    assert.match(res.stderr, /^krgo: \/nonexistent-rootfs is not a directory\n$/);
    const missing = await krgo(['commit']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /required option '-m, --message <msg>'/);
  });

  it('-v and --version print the version; usage errors of the parser exit 2, as the README says', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['-v', '--version']) {
      const res = await krgo([flag]);
      assert.equal(res.code, 0);
      assert.equal(res.stdout, `${version}\n`);
    }
    for (const args of [['pull'], ['bogus'], ['pull', 'x', '--no-such-option'], ['pull', 'x', '-j', 'abc'], ['pull', 'x', '-j', '0'], ['pull', 'x', '-j', '-1'], ['mount', 'x']]) {
      const res = await krgo(args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.notEqual(res.stderr, '');
    }
    assert.equal((await krgo(['pull', '--help'])).code, 0, '--help of a command still exits 0');
  });

  it('krgo completion bash completes commands, subcommands and options in a real bash', async () => {
    const script = await krgo(['completion', 'bash']);
    assert.equal(script.code, 0, script.stderr);
    const complete = async (words: string[]) => {
      const res = await run('bash', ['-c', `eval "$(cat)"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _krgo; printf '%s\\n' "\${COMPREPLY[@]}"`], { input: script.stdout });
      assert.equal(res.code, 0, res.stderr);
      return res.stdout.trim().split('\n');
    };
    assert.deepEqual(await complete(['krgo', 'pu']), ['pull', 'push']);
    assert.deepEqual(await complete(['krgo', 'pull', '--pl']), ['--platform']);
    assert.deepEqual(await complete(['krgo', 'cache', 'cl']), ['clear']);
    const zsh = await krgo(['completion', 'zsh']);
    assert.match(zsh.stdout, /^autoload -U \+X bashcompinit && bashcompinit\n/);
    assert.equal((await krgo(['completion', 'fish'])).code, 2);
  });
});
