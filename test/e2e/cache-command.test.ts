import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { busyboxImage } from '../support/fixtures.js';
import { mountDaemon, unmount } from '../support/mounts.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

const exists = (path: string) => readdir(path).then((n) => n.length > 0, () => false);

describe('krgo cache: size, prune, clear', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let image = '';

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('cache-command');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('busybox', busyboxImage());
    await layout.finish();
    image = `${registry.host}/busybox:latest`;
    await skopeoPush(join(work.path, 'layout'), 'busybox', image, 'v2s2');
  });

  after(async () => {
    await registry?.stop();
    await work?.remove();
  });

  it('shows each area, prunes what can be fetched again, clears only when no mount uses it', async () => {
    const cache = join(work.path, 'cache');
    assert.equal((await krgo(['pull', '-q', '--keep-blobs', image, '-r', join(work.path, 'rootfs'), '--cache-dir', cache])).code, 0);
    const mp = join(work.path, 'mnt');
    await mountDaemon(image, mp, cache);
    assert.equal((await readFile(join(mp, 'bin', 'busybox'))).length > 0, true);
    const partial = join(cache, 'blobs', 'sha256', `${'a'.repeat(64)}.partial`);
    await writeFile(partial, 'half a download nobody resumes');

    const shown = await krgo(['cache', '--cache-dir', cache]);
    assert.equal(shown.code, 0, shown.stderr);
    for (const area of ['blobs', 'index', 'spans', 'mounts']) assert.match(shown.stdout, new RegExp(`^  ${area} +[\\d.]+ [kMG]?B +\\d+ files`, 'm'));
    assert.match(shown.stdout, /^  total +[\d.]+ [kMG]?B$/m);

    const refused = await krgo(['cache', 'clear', '--cache-dir', cache]);
    assert.equal(refused.code, 11, refused.stderr);
    assert.match(refused.stderr, new RegExp(`mounts use ${cache}: ${mp}`));

    const pruned = await krgo(['cache', 'prune', '--max-spans', '0', '--cache-dir', cache]);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /freed \(1 partial downloads\)/);
    assert.equal(await exists(join(cache, 'spans')) && (await readdir(join(cache, 'spans'), { recursive: true })).some((n) => /\/\d+$/.test(n)), false, 'no span left');
    await assert.rejects(readFile(partial), 'the idle partial download is gone');
    assert.ok(await exists(join(cache, 'index')), 'indexes stay (costly to rebuild)');
    assert.equal((await readFile(join(mp, 'etc', 'motd'), 'utf8')), 'hello from krgo\n', 'the mount reads on, fetching again');

    await unmount(mp, cache);
    const cleared = await krgo(['cache', 'clear', '--cache-dir', cache]);
    assert.equal(cleared.code, 0, cleared.stderr);
    for (const area of ['blobs', 'index', 'spans', 'mounts']) assert.equal(await exists(join(cache, area)), false, area);
    await mkdir(cache, { recursive: true });
  });
});
