import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush, umociUnpack } from '../support/oci-layout.js';
import { edgeCaseImage, estargzEntries } from '../support/fixtures.js';
import { buildEstargz } from '../support/estargz-writer.js';
import { debianImageLayout, DEBIAN_TAG } from '../support/debian-image.js';
import { diffTrees, snapshotTree } from '../support/tree-snapshot.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { TOC_DIGEST_ANNOTATION } from '../../src/index/estargz.js';

describe('krgo materialize: the full rootfs from the indexes and the span cache', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('materialize');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('edge', edgeCaseImage(['gzip', 'none', 'zstd']));
    const stargz = buildEstargz(estargzEntries(), 64 * 1024);
    await layout.addImage('estargz', { layers: [{ tar: stargz.tar, blob: stargz.blob, annotations: { [TOC_DIGEST_ANNOTATION]: stargz.tocDigest } }] });
    await layout.addImage('edge-gzip', edgeCaseImage());
    await layout.finish();
    await skopeoPush(join(work.path, 'layout'), 'edge', `${registry.host}/edge:mixed`, 'oci');
    await skopeoPush(join(work.path, 'layout'), 'edge-gzip', `${registry.host}/edge:gzip`, 'oci');
    await skopeoPush(join(work.path, 'layout'), 'estargz', `${registry.host}/estargz:latest`, 'oci');
    await skopeoPush(await debianImageLayout(), DEBIAN_TAG, `${registry.host}/library/debian:bookworm`, 'v2s2');
  });

  after(async () => {
    await registry?.stop();
    await work?.remove();
  });

  for (const [image, oracleImage] of [
    ['edge:mixed', 'edge:gzip'],
    ['estargz:latest', 'estargz:latest'],
    ['library/debian:bookworm', 'library/debian:bookworm'],
  ] as const) {
    it(`${image} equals umoci unpack, mtimes to the nanosecond`, async () => {
      const slug = image.replace(/[/:]/g, '-');
      const rootfs = join(work.path, slug);
      const res = await krgo(['materialize', `${registry.host}/${image}`, '-r', rootfs, '--cache-dir', join(work.path, `cache-${slug}`)]);
      assert.equal(res.code, 0, res.stderr);
      const oracle = await umociUnpack(`${registry.host}/${oracleImage}`, join(work.path, `oracle-${slug}`));
      assert.deepEqual(diffTrees(await snapshotTree(oracle), await snapshotTree(rootfs)), []);
      const record = JSON.parse(await readFile(join(work.path, `.${slug}.krgo`, 'image.json'), 'utf8')) as { writtenBy: string };
      assert.equal(record.writtenBy, 'materialize');
    });
  }

  it('fetches nothing the cache already holds', async () => {
    const cache = join(work.path, 'cache-library-debian-bookworm');
    const res = await krgo(['materialize', `${registry.host}/library/debian:bookworm`, '-r', join(work.path, 'debian-again'), '--cache-dir', cache]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /, 0 B fetched,/);
  });

  it('a damaged windows file beside a locally built index: the index is rebuilt, materialize succeeds and equals umoci', async () => {
    const cache = join(work.path, 'cache-damaged-windows');
    const first = await krgo(['index', `${registry.host}/edge:gzip`, '--cache-dir', cache]);
    assert.equal(first.code, 0, first.stderr);
    const windows = (await readdir(join(cache, 'index', 'sha256'))).filter((n) => n.endsWith('.windows'));
    assert.ok(windows.length > 0);
    for (const name of windows) {
      const path = join(cache, 'index', 'sha256', name);
      const bytes = await readFile(path);
      bytes.writeUInt8(bytes.readUInt8(0) ^ 0xff, 0);
      await writeFile(path, bytes);
    }
    const rootfs = join(work.path, 'damaged-windows');
    const res = await krgo(['materialize', `${registry.host}/edge:gzip`, '-r', rootfs, '--cache-dir', cache]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /seek windows of layer index .* are damaged; rebuilding it/);
    assert.doesNotMatch(res.stderr, /\n\s+at |ENOTEMPTY/);
    const oracle = await umociUnpack(`${registry.host}/edge:gzip`, join(work.path, 'oracle-damaged-windows'));
    assert.deepEqual(diffTrees(await snapshotTree(oracle), await snapshotTree(rootfs)), []);
  });
});
