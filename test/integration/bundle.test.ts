import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { busyboxImage, dir, file } from '../support/fixtures.js';
import { buildTar } from '../../src/tar/tar-writer.js';
import { tempDir } from '../support/temp.js';
import { krgo } from '../support/krgo-cli.js';
import { run, runOk } from '../support/run.js';

interface Spec {
  process: { args: string[]; env: string[]; cwd: string; user: { uid: number; gid: number; additionalGids?: number[] } };
  root: { path: string; readonly?: boolean };
  annotations?: Record<string, string>;
}

/**
 * The keys image-spec's conversion.md defines (umoci adds its own beside them). The os one is
 * checked apart: a label of that name must win over the implicit annotation (conversion.md,
 * Annotations), which umoci 0.4.7 does not do.
 */
const CONVERTED = ['org.opencontainers.image.architecture', 'org.opencontainers.image.created', 'org.opencontainers.image.stopSignal', 'org.opencontainers.image.exposedPorts', 'com.example.team', 'org.opencontainers.image.author'];
const converted = (a: Record<string, string> | undefined) => Object.fromEntries(Object.entries(a ?? {}).filter(([k]) => CONVERTED.includes(k)));

describe('krgo bundle: an OCI runtime bundle config, as umoci makes it from the same image', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let image = '';
  let layout = '';

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('bundle');
    layout = join(work.path, 'layout');
    const writer = new OciLayoutWriter(layout);
    const base = busyboxImage();
    const users = buildTar([
      dir('etc'),
      file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:1500:app:/home/app:/bin/sh\n'),
      file('etc/group', 'root:x:0:\napp:x:1500:\naudio:x:29:app\nvideo:x:44:other,app\n'),
      dir('srv'),
    ]);
    await writer.addImage('app', {
      ...base,
      layers: [...base.layers, { tar: users }],
      config: {
        author: 'krgo tests',
        config: {
          User: 'app',
          Env: ['PATH=/bin', 'GREETING=hello world'],
          Entrypoint: ['/bin/sh', '-c'],
          Cmd: ['echo $GREETING'],
          WorkingDir: '/srv',
          Labels: { 'com.example.team': 'storage', 'org.opencontainers.image.os': 'as-labelled' },
          StopSignal: 'SIGINT',
          ExposedPorts: { '8080/tcp': {}, '53/udp': {} },
        },
      },
    });
    await writer.finish();
    image = `${registry.host}/app:1`;
    await skopeoPush(layout, 'app', image, 'oci');
  });

  after(async () => {
    await registry?.stop();
    await work?.remove();
  });

  it('for a pulled rootfs and for a mount: process, user, annotations equal umoci raw runtime-config', async () => {
    const rootfs = join(work.path, 'rootfs');
    const pulled = await krgo(['pull', image, '-r', rootfs, '--cache-dir', join(work.path, 'cache'), '-q']);
    assert.equal(pulled.code, 0, pulled.stderr);
    const oracle = join(work.path, 'umoci-config.json');
    await runOk('umoci', ['raw', 'runtime-config', '--image', `${layout}:app`, '--rootfs', rootfs, oracle]);
    const expected = JSON.parse(await readFile(oracle, 'utf8')) as Spec;

    const made = await krgo(['bundle', rootfs, join(work.path, 'bundle')]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /runc run -b /);
    const spec = JSON.parse(await readFile(join(work.path, 'bundle', 'config.json'), 'utf8')) as Spec;
    assert.deepEqual(spec.process.args, expected.process.args);
    assert.deepEqual(spec.process.env, expected.process.env);
    assert.equal(spec.process.cwd, expected.process.cwd);
    assert.deepEqual({ ...spec.process.user, additionalGids: [...(spec.process.user.additionalGids ?? [])].sort() }, { ...expected.process.user, additionalGids: [...(expected.process.user.additionalGids ?? [])].sort() });
    assert.deepEqual(converted(spec.annotations), converted(expected.annotations));
    assert.equal(spec.annotations?.['org.opencontainers.image.os'], 'as-labelled', 'a label wins over the implicit annotation');
    assert.deepEqual(spec.root, { path: rootfs, readonly: false });
    const again = await krgo(['bundle', rootfs, join(work.path, 'bundle')]);
    assert.equal(again.code, 8, 'an existing config.json is not replaced without --force');
    // runc runs it: the image's Entrypoint and Cmd with its Env, as its user, in its WorkingDir.
    const ran = await run('runc', ['run', '-b', join(work.path, 'bundle'), `krgo-bundle-${process.pid}`], { input: '', timeoutMs: 60_000 });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, 'hello world\n');

    const mp = join(work.path, 'mnt');
    await mkdir(mp);
    const cache = join(work.path, 'cache-mount');
    assert.equal((await krgo(['mount', '-d', image, mp, '--cache-dir', cache])).code, 0);
    try {
      const fromMount = await krgo(['bundle', mp, join(work.path, 'bundle-mount')]);
      assert.equal(fromMount.code, 0, fromMount.stderr);
      const mounted = JSON.parse(await readFile(join(work.path, 'bundle-mount', 'config.json'), 'utf8')) as Spec;
      assert.deepEqual(mounted.process, spec.process, 'the same process from the mount');
      assert.deepEqual(mounted.root, { path: mp, readonly: true });
    } finally {
      await krgo(['umount', mp]);
    }
    // A writable mount: runc makes the mount points this small image lacks (/proc, /dev) in the upper directory.
    assert.equal((await krgo(['mount', '-d', '-w', image, mp, '--cache-dir', cache])).code, 0);
    try {
      assert.equal((await krgo(['bundle', mp, join(work.path, 'bundle-writable')])).code, 0);
      const ran = await run('runc', ['run', '-b', join(work.path, 'bundle-writable'), `krgo-bundle-w-${process.pid}`], { input: '', timeoutMs: 60_000 });
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout, 'hello world\n');
    } finally {
      await krgo(['umount', mp]);
    }
  });

  it('a user the image does not have is an error; /etc/passwd linked out of the root is not read', async () => {
    const rootfs = join(work.path, 'rootfs');
    const meta = join(work.path, '.rootfs.krgo', 'config.json');
    const config = JSON.parse(await readFile(meta, 'utf8')) as { config: { User: string } };
    config.config.User = 'nosuchuser';
    await writeFile(meta, JSON.stringify(config));
    const missing = await krgo(['bundle', rootfs, join(work.path, 'bundle-missing')]);
    assert.equal(missing.code, 7, missing.stderr);
    assert.match(missing.stderr, /user "nosuchuser", which its \/etc\/passwd does not have/);
    // A crafted rootfs whose /etc/passwd points at the host's: the host file is never read.
    config.config.User = 'root';
    await writeFile(meta, JSON.stringify(config));
    await runOk('rm', [join(rootfs, 'etc/passwd')]);
    await symlink('/etc/passwd', join(rootfs, 'etc/passwd'));
    const linked = await krgo(['bundle', rootfs, join(work.path, 'bundle-linked')]);
    assert.equal(linked.code, 7, 'root is a name: without a passwd file of its own, not resolvable');
  });
});
