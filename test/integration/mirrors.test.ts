import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { startRegistry, freePort, type RunningRegistry } from '../support/registry.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { busyboxImage } from '../support/fixtures.js';
import { unmount } from '../support/mounts.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

/**
 * Registry mirrors from containers-registries.conf(5), tried in order before the registry itself,
 * with a real pull-through cache: Debian's docker-registry in proxy mode in front of another.
 */
describe('registry mirrors (registries.conf) and a pull-through cache', () => {
  let upstream: RunningRegistry;
  let cache: RunningRegistry;
  let origin: FaultProxy;
  let mirror: FaultProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let conf = '';

  before(async () => {
    upstream = await startRegistry();
    work = await tempDir('mirrors');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('busybox', busyboxImage());
    await layout.finish();
    await skopeoPush(join(work.path, 'layout'), 'busybox', `${upstream.host}/library/busybox:latest`, 'v2s2');
    // krgo reaches the origin only through `origin` (so what it asks there is seen); the cache
    // fetches from the upstream directly.
    origin = await startFaultProxy(upstream.host);
    cache = await startRegistry({ pullThroughFrom: upstream.host });
    mirror = await startFaultProxy(cache.host);
    const dead = await freePort();
    conf = join(work.path, 'registries.conf');
    await writeFile(
      conf,
      `unqualified-search-registries = []\n\n[[registry]]\nlocation = "${origin.host}"\n\n[[registry.mirror]]\nlocation = "127.0.0.1:${dead}"\n\n[[registry.mirror]]\nlocation = "${mirror.host}"\n`,
    );
  });

  after(async () => {
    await mirror?.stop();
    await origin?.stop();
    await cache?.stop();
    await upstream?.stop();
    await work?.remove();
  });

  it('pull goes to the first mirror that answers (a dead one is passed over at once) and never to the registry', async () => {
    const started = Date.now();
    const res = await krgo(['pull', '-q', `${origin.host}/library/busybox:latest`, '-r', join(work.path, 'rootfs'), '--cache-dir', join(work.path, 'cache')], { CONTAINERS_REGISTRIES_CONF: conf });
    assert.equal(res.code, 0, res.stderr);
    assert.ok(Date.now() - started < 20_000, 'the dead mirror cost no retries');
    assert.match(res.stderr, /warning: mirror 127\.0\.0\.1:\d+\/library\/busybox did not serve latest: .*; trying the next/);
    assert.equal(await readFile(join(work.path, 'rootfs', 'etc', 'motd'), 'utf8'), 'hello from krgo\n');
    assert.ok(mirror.seen.some((r) => r.path === '/v2/library/busybox/manifests/latest'), 'the manifest came from the mirror');
    assert.ok(mirror.seen.some((r) => r.path.startsWith('/v2/library/busybox/blobs/sha256:')), 'and the layers');
    assert.equal(origin.seen.length, 0, 'the registry itself was not asked');
  });

  it('a mount reads through the mirror too; with no mirror answering, the registry serves', async () => {
    const mp = join(work.path, 'mnt');
    await mkdir(mp, { recursive: true });
    mirror.seen.length = 0;
    const mounted = await krgo(['mount', '-d', `${origin.host}/library/busybox:latest`, mp, '--cache-dir', join(work.path, 'cache-mount')], { CONTAINERS_REGISTRIES_CONF: conf });
    assert.equal(mounted.code, 0, mounted.stderr);
    assert.equal(await readFile(join(mp, 'etc', 'motd'), 'utf8'), 'hello from krgo\n');
    await unmount(mp, join(work.path, 'cache-mount'));
    assert.ok(mirror.seen.length > 0);
    assert.equal(origin.seen.length, 0);

    mirror.setFaults(() => ({ kind: 'status', status: 503 }));
    const fallback = await krgo(['pull', '-q', `${origin.host}/library/busybox:latest`, '-r', join(work.path, 'rootfs-origin'), '--cache-dir', join(work.path, 'cache-2')], { CONTAINERS_REGISTRIES_CONF: conf });
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.ok(origin.seen.some((r) => r.path === '/v2/library/busybox/manifests/latest'), 'the registry served when no mirror did');
  });
});
