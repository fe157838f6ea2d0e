import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { OciLayoutWriter, pushDirect } from '../support/oci-layout.js';
import { buildTar } from '../../src/tar/tar-writer.js';
import { unmount } from '../support/mounts.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { readStatus } from '../../src/mount/mount-status.js';

const REPEATS = 1500;

/**
 * A manifest that names one blob 1 500 times (a crafted image; the issue met 25 000): each
 * distinct blob is downloaded, indexed and saved once, by pull and by mount.
 */
describe('one layer blob named many times in a manifest', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let layerDigest = '';

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('repeated');
    const T = 1_700_000_000;
    const tar = buildTar([
      { path: 'etc', type: 'dir', mode: 0o755, mtime: T },
      { path: 'etc/motd', type: 'file', mode: 0o644, mtime: T, content: 'the same layer, again and again\n' },
    ]);
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('repeated', { layers: Array.from({ length: REPEATS }, () => ({ tar })) });
    await layout.finish();
    await pushDirect(join(work.path, 'layout'), 'repeated', registry.host, 'hostile');
    const manifest = JSON.parse(await readFile(join(work.path, 'layout', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const image = JSON.parse(await readFile(join(work.path, 'layout', 'blobs', 'sha256', manifest.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
    layerDigest = image.layers[0]!.digest;
    proxy = await startFaultProxy(registry.host);
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await work?.remove();
  });

  /** Whole-blob GETs of the layer (a download, or an index pass); range reads are counted apart. */
  const layerGets = (ranged = false) => proxy.seen.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layerDigest}`) && (r.range !== undefined) === ranged).length;

  it('pull downloads it once, applies it each time, no warning', async () => {
    proxy.seen.length = 0;
    const rootfs = join(work.path, 'rootfs');
    const res = await krgo(['pull', '-q', `${proxy.host}/hostile:repeated`, '-r', rootfs, '--cache-dir', join(work.path, 'cache-pull')]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, '', 'no EMFILE or other warning');
    assert.equal(await readFile(join(rootfs, 'etc/motd'), 'utf8'), 'the same layer, again and again\n');
    assert.equal(layerGets(), 1);
  });

  it('mount indexes it once (one pass, one request) and serves the tree', async () => {
    proxy.seen.length = 0;
    const mp = join(work.path, 'mnt');
    const cache = join(work.path, 'cache-mount');
    await mkdir(mp, { recursive: true });
    try {
      const res = await krgo(['mount', '-d', '-q', `${proxy.host}/hostile:repeated`, mp, '--cache-dir', cache]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(await readFile(join(mp, 'etc/motd'), 'utf8'), 'the same layer, again and again\n');
      assert.equal(layerGets(), 1, 'one streaming pass for the one blob, not one per layer');
      assert.ok(layerGets(true) <= 1, 'the read of etc/motd: one range request at most');
      const status = await readStatus(cache, mp);
      assert.equal(status?.layers.length, REPEATS);
    } finally {
      await unmount(mp, cache);
    }
  });
});
