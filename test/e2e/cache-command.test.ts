import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { mountDaemon, unmount } from '../support/mounts.js';
import { startBusyboxRegistry, type BusyboxSetup } from '../support/busybox-registry.js';
import { krgo } from '../support/krgo-cli.js';

const exists = (path: string) => readdir(path).then((n) => n.length > 0, () => false);

describe('krgo cache: size, prune, clear', () => {
  let setup: BusyboxSetup;
  let image = '';

  before(async () => {
    setup = await startBusyboxRegistry('cache-command');
    image = setup.image;
  });

  after(async () => {
    await setup?.stop();
  });

  it('shows each area, prunes what can be fetched again, clears only when no mount uses it', async () => {
    const cache = join(setup.work, 'cache');
    assert.equal((await krgo(['pull', '-q', '--keep-blobs', image, '-r', join(setup.work, 'rootfs'), '--cache-dir', cache])).code, 0);
    const mp = join(setup.work, 'mnt');
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
