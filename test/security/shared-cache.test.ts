import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { startWanEmulator, type WanEmulator } from '../support/wan-emulator.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { buildTar } from '../../src/tar/tar-writer.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

/**
 * The default cache (~/.cache/krgo) is shared by every krgo process: two pulls of images that
 * share a layer, at the same time, must both succeed with one download of it between them.
 */
describe('one cache shared by concurrent processes', () => {
  let registry: RunningRegistry;
  let wan: WanEmulator;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const big = randomBytes(24 * 1024 * 1024);
  const T = 1_700_000_000;

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('shared-cache');
    const base = buildTar([{ path: 'big.bin', type: 'file', mode: 0o644, mtime: T, content: big }]);
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('a', { layers: [{ tar: base }, { tar: buildTar([{ path: 'a', type: 'file', mode: 0o644, mtime: T, content: 'a' }]) }] });
    await layout.addImage('b', { layers: [{ tar: base }, { tar: buildTar([{ path: 'b', type: 'file', mode: 0o644, mtime: T, content: 'b' }]) }] });
    await layout.finish();
    await skopeoPush(join(work.path, 'layout'), 'a', `${registry.host}/shared:a`, 'oci');
    await skopeoPush(join(work.path, 'layout'), 'b', `${registry.host}/shared:b`, 'oci');
    // Slow enough (about 2 s for the shared layer) that the two pulls overlap.
    wan = await startWanEmulator(registry.host, { delayMs: 5, bitsPerSecond: 100_000_000 });
  });

  after(async () => {
    await wan?.stop();
    await registry?.stop();
    await work?.remove();
  });

  it('two pulls sharing a layer at once: both exact, one download shared, nothing left in the cache', async () => {
    const cache = join(work.path, 'cache');
    const digest = createHash('sha256').update(big).digest('hex');
    for (let round = 0; round < 3; round++) {
      wan.reset();
      const [a, b] = await Promise.all(
        ['a', 'b'].map((tag) => krgo(['pull', '-q', `${wan.host}/shared:${tag}`, '-r', join(work.path, `r${round}-${tag}`), '--cache-dir', cache])),
      );
      assert.equal(a!.code, 0, a!.stderr);
      assert.equal(b!.code, 0, b!.stderr);
      for (const tag of ['a', 'b']) {
        const rootfs = join(work.path, `r${round}-${tag}`);
        assert.equal(createHash('sha256').update(await readFile(join(rootfs, 'big.bin'))).digest('hex'), digest, `round ${round}, ${tag}: the big file is exact`);
        assert.equal(await readFile(join(rootfs, tag), 'utf8'), tag);
      }
      assert.match(a!.stderr + b!.stderr, /another krgo process is downloading sha256:.*; sharing its download/);
      assert.ok(wan.bytesToClient < big.length * 1.5, `the shared layer crossed the link once, not twice (${wan.bytesToClient} bytes for a ${big.length}-byte layer)`);
      const left = (await filesBelow(join(cache, 'blobs'))).filter((f) => /\.(partial|lock|corrupt)$|\.tmp-/.test(f));
      assert.deepEqual(left, [], 'no partial, lock or temp file left');
    }
  });

  it('garbage an older run left (a .partial.corrupt, a temp file of a dead process) is removed by the next pull', async () => {
    const cache = join(work.path, 'cache-garbage');
    const blobs = join(cache, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    await writeFile(join(blobs, `${'0'.repeat(64)}.partial.corrupt`), randomBytes(1024));
    await writeFile(join(cache, 'blobs', `x.tmp-999999999-0a0b0c0d`), 'left by a process that died');
    const res = await krgo(['pull', '-q', `${registry.host}/shared:a`, '-r', join(work.path, 'garbage-rootfs'), '--cache-dir', cache]);
    assert.equal(res.code, 0, res.stderr);
    const left = (await filesBelow(join(cache, 'blobs'))).filter((f) => /\.(partial|lock|corrupt)$|\.tmp-/.test(f));
    assert.deepEqual(left, []);
  });
});
