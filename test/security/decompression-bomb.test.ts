import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, open, readFile, readdir, stat } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { oneBlockGzip } from '../support/deflate-bomb.js';
import { buildTar } from '../../src/tar/tar-writer.js';
import { unmount } from '../support/mounts.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { readStatus } from '../../src/mount/mount-status.js';

const BOMB_BYTES = 80 * 1024 * 1024;

/**
 * CVE-2017-14992 class: a layer of well under a megabyte whose one deflate block inflates to
 * 80 MiB of zeros. No seek point can fall inside a block, so a lazy read would have to inflate
 * all of it: the read answers EFBIG instead, and the mount stays up. Pull streams it (bounded
 * memory) and writes it, as umoci does.
 */
describe('decompression bomb (CVE-2017-14992 class)', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let image = '';
  let blobSize = 0;

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('bomb');
    const T = 1_700_000_000;
    const tar = buildTar([{ path: 'zeros', type: 'file', mode: 0o644, mtime: T, content: Buffer.alloc(BOMB_BYTES) }]);
    const canary = buildTar([{ path: 'canary', type: 'file', mode: 0o644, mtime: T, content: 'written' }]);
    let end = tar.length;
    while (end > 0 && tar[end - 1] === 0) end--;
    const blob = oneBlockGzip(tar.subarray(0, end), tar.length - end, Buffer.alloc(0));
    blobSize = blob.length;
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('bomb', { layers: [{ tar, blob, compression: 'gzip' }, { tar: canary }] });
    await layout.finish();
    image = `${registry.host}/hostile:bomb`;
    await skopeoPush(join(work.path, 'layout'), 'bomb', image, 'oci');
  });

  after(async () => {
    await registry?.stop();
    await work?.remove();
  });

  it('a lazy read of the bomb answers EFBIG; the mount stays up and serves the rest', async () => {
    assert.ok(blobSize < 1024 * 1024, `the layer is small (${blobSize} bytes)`);
    const mp = join(work.path, 'mnt');
    const cache = join(work.path, 'cache');
    await mkdir(mp, { recursive: true });
    try {
      const res = await krgo(['mount', '-d', image, mp, '--cache-dir', cache]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal((await stat(join(mp, 'zeros'))).size, BOMB_BYTES);
      const fh = await open(join(mp, 'zeros'), 'r');
      try {
        await assert.rejects(fh.read(Buffer.alloc(4096), 0, 4096, 0), (err: NodeJS.ErrnoException) => err.code === 'EFBIG');
      } finally {
        await fh.close();
      }
      assert.equal(await readFile(join(mp, 'canary'), 'utf8'), 'written', 'the mount still answers');
      const status = await readStatus(cache, mp);
      assert.ok(status, 'the mount process is up');
    } finally {
      await unmount(mp, cache);
    }
    // Counted once the mount process has ended: while it runs, its span writes rename temp files
    // between a directory listing and a stat.
    const spans = join(cache, 'spans');
    const onDisk = await stat(spans).then(() => true, () => false);
    if (onDisk) {
      let total = 0;
      for (const e of await readdir(spans, { recursive: true, withFileTypes: true })) if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
      assert.ok(total < 16 * 1024 * 1024, `nothing of the bomb went to the disk cache (${total} bytes)`);
    }
  });

  it('pull streams it with bounded memory and writes the file, as umoci does', async () => {
    const rootfs = join(work.path, 'rootfs');
    const res = await krgo(['pull', '-q', image, '-r', rootfs, '--cache-dir', join(work.path, 'cache-pull')]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal((await stat(join(rootfs, 'zeros'))).size, BOMB_BYTES);
  });
});
