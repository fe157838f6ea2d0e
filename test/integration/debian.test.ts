import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { MergedTree } from '../../src/vfs/merged-tree.js';
import { recordsOfMergedTree } from '../support/merged-tree-records.js';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { skopeoPush, umociUnpack } from '../support/oci-layout.js';
import { debianImageLayout, DEBIAN_TAG } from '../support/debian-image.js';
import { diffTrees, snapshotTree } from '../support/tree-snapshot.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { run } from '../support/run.js';

describe('a real multi-layer Debian image', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let rootfs: string;

  before(async () => {
    const layout = await debianImageLayout((line) => process.stderr.write(`# ${line}\n`));
    registry = await startRegistry();
    work = await tempDir('debian');
    await skopeoPush(layout, DEBIAN_TAG, `${registry.host}/library/debian:bookworm`, 'v2s2');
    rootfs = join(work.path, 'debian');
  });

  after(async () => {
    await registry?.stop();
    await work?.remove();
  });

  it('krgo pull equals umoci unpack, path for path', async () => {
    const res = await krgo(['pull', `${registry.host}/library/debian:bookworm`, '-r', rootfs, '--cache-dir', join(work.path, 'cache')]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /entries from 3 layers/);
    const oracle = await umociUnpack(`${registry.host}/library/debian:bookworm`, join(work.path, 'oracle'));
    const expected = await snapshotTree(oracle);
    assert.ok(expected.size > 5000, `a real Debian tree (${expected.size} paths)`);
    assert.deepEqual(diffTrees(expected, await snapshotTree(rootfs)), []);
  });

  it('the in-memory merged tree of its layers equals the pulled rootfs', async () => {
    const layoutDir = await debianImageLayout();
    const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (digest: string) => readFile(join(layoutDir, 'blobs', 'sha256', digest.slice(7)));
    const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString()) as { layers: { digest: string }[] };
    const layers = await Promise.all(manifest.layers.map(async (l) => gunzipSync(await blob(l.digest))));
    const tree = new MergedTree();
    for (const layer of layers) await tree.addLayer(Readable.from([layer]));
    assert.deepEqual(diffTrees(await snapshotTree(rootfs), recordsOfMergedTree(tree, layers)), []);
  });

  it('the layers did what they say: python3 added, docs hidden, motd deleted', async () => {
    await stat(join(rootfs, 'usr/bin/python3.11'));
    await assert.rejects(stat(join(rootfs, 'etc/motd')));
    await assert.rejects(stat(join(rootfs, 'usr/share/man')));
    assert.ok((await stat(join(rootfs, 'usr/share/doc'))).isDirectory());
  });

  it('python3 runs in it under chroot, and curl with its dependency closure', async () => {
    const res = await run('chroot', [rootfs, '/usr/bin/python3', '-c', 'print(42)']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, '42\n');
    const curl = await run('chroot', [rootfs, '/usr/bin/curl', '--version']);
    assert.equal(curl.code, 0, curl.stderr);
    assert.match(curl.stdout, /^curl \d+\.\d+/);
  });

  it('python3 runs in it under systemd-nspawn', async () => {
    const res = await run('systemd-nspawn', ['--pipe', '--read-only', '--register=no', '--keep-unit', '-q', '-D', rootfs, '/usr/bin/python3', '-c', 'import os; print(os.getpid() > 0, 6 * 7)']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), 'True 42');
  });
});
