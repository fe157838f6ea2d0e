import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { lstat, mkdir, readdir, readFile, stat, writeFile, chmod } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { hostileImages } from '../support/fixtures.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

/**
 * One crafted image per escape class (see REFERENCES.md for the CVEs). A directory on the host
 * holds a secret; after every pull it must be exactly as it was, and the harmless entries of the
 * hostile layers must still be written.
 */
describe('no layer can touch anything outside the rootfs', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let host: Awaited<ReturnType<typeof tempDir>>;
  let images: Record<string, Buffer[]>;
  const tagOf = (name: string) => name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().replace(/^-|-$/g, '');

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('sec');
    host = await tempDir('host');
    await writeFile(join(host.path, 'secret'), 'host secret\n');
    await chmod(join(host.path, 'secret'), 0o600);
    images = hostileImages(host.path);
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    for (const [name, layers] of Object.entries(images)) await layout.addImage(tagOf(name), { layers: layers.map((tar) => ({ tar })) });
    await layout.finish();
    for (const name of Object.keys(images)) await skopeoPush(join(work.path, 'layout'), tagOf(name), `${registry.host}/hostile:${tagOf(name)}`, 'oci');
  });

  after(async () => {
    await registry?.stop();
    await work?.remove();
    await host?.remove();
  });

  async function assertHostUntouched(): Promise<void> {
    assert.deepEqual(await readdir(host.path), ['secret']);
    const secret = await lstat(join(host.path, 'secret'));
    assert.ok(secret.isFile());
    assert.equal(secret.mode & 0o7777, 0o600);
    assert.equal(secret.nlink, 1, 'nothing may hardlink the host file');
    assert.equal(await readFile(join(host.path, 'secret'), 'utf8'), 'host secret\n');
  }

  const expectations: Record<string, { warn?: RegExp; inside?: string[] }> = {
    'dotdot-traversal (CVE-2016-7569 class)': { warn: /skipped ".*dotdot": its path climbs out of the root/ },
    'absolute-path': { inside: ['absolute'] },
    'symlink-then-write, same layer (CVE-2014-9356 class)': { inside: ['pwned', 'pwned-rel'] },
    'symlink-then-write, later layer': { inside: ['pwned', 'pwned-rel', 'newdir', 'newlink'] },
    'symlink-loop': { warn: /skipped "loop1\/x": too many levels of symbolic links/ },
    'hardlink-outside (CVE-2014-6407 class)': { warn: /skipped "hl-through-symlink": hardlink target "via\/secret" does not exist/ },
    'overwrite-through-final-symlink (CVE-2021-32760 class)': {},
    'whiteout-escape': { warn: /invalid whiteout name/ },
    'device-through-symlink': { inside: ['mem'] },
  };

  for (const name of Object.keys(expectations)) {
    it(name, async () => {
      const rootfs = join(work.path, tagOf(name));
      const res = await krgo(['pull', `${registry.host}/hostile:${tagOf(name)}`, '-r', rootfs, '--cache-dir', join(work.path, 'cache')]);
      assert.equal(res.code, 0, `a hostile entry is skipped, the pull goes on: ${res.stderr}`);
      await assertHostUntouched();
      assert.equal(await readFile(join(rootfs, 'canary'), 'utf8'), 'written');
      const expected = expectations[name]!;
      if (expected.warn) assert.match(res.stderr, expected.warn);
      // What a chroot would have done: the entries land in the rootfs's own copy of the host path.
      for (const inside of expected.inside ?? []) await lstat(join(rootfs, host.path, inside));
    });
  }

  it('replacing a symlink to a host file replaces the link and leaves the file alone', async () => {
    const rootfs = join(work.path, tagOf('overwrite-through-final-symlink (CVE-2021-32760 class)'));
    assert.equal(await readFile(join(rootfs, 'target'), 'utf8'), 'replaces the link, never writes through it');
    assert.ok((await lstat(join(rootfs, 'target-dir'))).isDirectory());
    await assertHostUntouched();
  });

  it('hardlinks never reach the host file', async () => {
    const rootfs = join(work.path, tagOf('hardlink-outside (CVE-2014-6407 class)'));
    for (const name of ['hl-dotdot', 'hl-abs', 'hl-through-symlink']) await assert.rejects(lstat(join(rootfs, name)), `${name} must not exist`);
  });

  it('a crafted PAX header larger than the cap fails with a clear error, not a crash', async () => {
    const { buildTar } = await import('../../src/tar/tar-writer.js');
    const huge = buildTar([{ path: 'x', type: 'file', content: 'x', xattrs: { 'user.big': Buffer.alloc(2 << 20, 97) } }]);
    const layout = new OciLayoutWriter(join(work.path, 'layout-pax'));
    await layout.addImage('pax', { layers: [{ tar: huge }] });
    await layout.finish();
    await skopeoPush(join(work.path, 'layout-pax'), 'pax', `${registry.host}/hostile:pax`, 'oci');
    const rootfs = join(work.path, 'pax');
    const res = await krgo(['pull', `${registry.host}/hostile:pax`, '-r', rootfs, '--cache-dir', join(work.path, 'cache')]);
    assert.equal(res.code, 6);
    assert.match(res.stderr, /PAX record of \d+ bytes exceeds the 1048576-byte limit/);
    await assert.rejects(stat(rootfs), 'a failed pull leaves no rootfs');
    await mkdir(rootfs);
  });
});
