import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readdir } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { buildTar } from '../../src/tar/tar-writer.js';
import { unmount } from '../support/mounts.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

/**
 * Names no system call takes: a path 20 000 directories deep (40 kB, by PAX), a PAX path with a
 * NUL byte, a component of 300 bytes. Each is skipped with a warning; the rest of the layer is
 * written, by pull and by mount alike; nothing crashes.
 */
describe('hostile names: too deep, too long, NUL bytes', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let image = '';

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('hostile-names');
    const T = 1_700_000_000;
    const tar = buildTar([
      { path: 'canary', type: 'file', mode: 0o644, mtime: T, content: 'written' },
      { path: `${'d/'.repeat(20_000)}deep-file`, type: 'file', mode: 0o644, mtime: T, content: 'too deep' },
      { path: `${'n'.repeat(120)}\0hidden-after-nul`, type: 'file', mode: 0o644, mtime: T, content: 'nul' },
      { path: `long/${'c'.repeat(300)}`, type: 'file', mode: 0o644, mtime: T, content: 'long component' },
      { path: `link-with-nul-target`, type: 'symlink', mode: 0o777, mtime: T, linkname: `${'t'.repeat(120)}\0x` },
    ]);
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('names', { layers: [{ tar }] });
    await layout.finish();
    image = `${registry.host}/hostile:names`;
    await skopeoPush(join(work.path, 'layout'), 'names', image, 'oci');
  });

  after(async () => {
    await registry?.stop();
    await work?.remove();
  });

  const expectWarnings = (stderr: string) => {
    assert.match(stderr, /skipped "d\/d\/d.*…": its path is longer than 4095 bytes/);
    assert.match(stderr, /skipped "n+\\u0000hidden-after-nul": its path contains a NUL byte/);
    assert.match(stderr, /skipped "long\/c+…": a component of its path is longer than 255 bytes/);
    assert.match(stderr, /skipped "link-with-nul-target": its link target contains a NUL byte/);
    assert.doesNotMatch(stderr, /\n\s+at |RangeError|ERR_INVALID_ARG_VALUE|ENAMETOOLONG/, 'no stack trace, no raw system error');
  };

  it('pull skips them with a warning each and writes the rest', async () => {
    const rootfs = join(work.path, 'rootfs');
    const res = await krgo(['pull', image, '-r', rootfs, '--cache-dir', join(work.path, 'cache')]);
    assert.equal(res.code, 0, res.stderr);
    expectWarnings(res.stderr);
    assert.deepEqual(await readdir(rootfs), ['canary'], 'nothing of a skipped entry is made, not even its parents');
  });

  it('mount skips the same entries and shows the same tree', async () => {
    const mp = join(work.path, 'mnt');
    const cache = join(work.path, 'cache-mount');
    await mkdir(mp, { recursive: true });
    try {
      const res = await krgo(['mount', '-d', image, mp, '--cache-dir', cache]);
      assert.equal(res.code, 0, res.stderr);
      expectWarnings(res.stderr);
      assert.deepEqual(await readdir(mp), ['canary']);
    } finally {
      await unmount(mp, cache);
    }
  });
});
