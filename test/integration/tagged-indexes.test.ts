import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { startBusyboxRegistry, type BusyboxSetup } from '../support/busybox-registry.js';
import { skopeoPush } from '../support/oci-layout.js';
import { krgo } from '../support/krgo-cli.js';
import { mountDaemon, unmount } from '../support/mounts.js';
import { runOk } from '../support/run.js';

const MANIFEST_ACCEPT = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';

/**
 * The manifest kept under `<tag>.krgo-indexes` (the members of the index artifacts of the images
 * under the tag, the newest one's config and indexes embedded): asked for together with the
 * manifest of a tag, so a mount has all it needs to be ready after one round trip; a tag that
 * moved since falls back to the referrers of the manifest's digest.
 */
describe('index artifacts listed under a tag beside the image tag', () => {
  let setup: BusyboxSetup;
  const repo = () => setup.image.slice(0, setup.image.lastIndexOf(':'));

  async function manifestDigest(tag: string): Promise<string> {
    const res = await fetch(`http://${setup.registry.host}/v2/busybox/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } });
    assert.equal(res.status, 200, `HEAD ${tag}`);
    return res.headers.get('docker-content-digest')!;
  }

  async function taggedSubjects(): Promise<string[]> {
    const res = await fetch(`http://${setup.registry.host}/v2/busybox/manifests/latest.krgo-indexes`, { headers: { accept: MANIFEST_ACCEPT } });
    assert.equal(res.status, 200, 'the tag-keyed manifest exists');
    const listed = (await res.json()) as { artifactType?: string; layers: { mediaType: string; annotations?: Record<string, string>; data?: string }[] };
    assert.equal(listed.artifactType, 'application/vnd.krgo.tagged-indexes.v2');
    const subjects = [...new Set(listed.layers.map((m) => m.annotations?.['dev.krgo.subject'] ?? ''))];
    // The newest image's indexes are embedded; the others' are named only (fetched by digest).
    const embeddedIndexes = (subject: string) => listed.layers.filter((m) => m.annotations?.['dev.krgo.subject'] === subject && m.mediaType.startsWith('application/vnd.krgo.layer-index.') && typeof m.data === 'string').length;
    assert.ok(embeddedIndexes(subjects[subjects.length - 1]!) > 0, 'the newest indexes are embedded');
    assert.deepEqual(subjects.slice(0, -1).map(embeddedIndexes), subjects.slice(0, -1).map(() => 0), 'the others are named only');
    return subjects;
  }

  /** `krgo index` with an empty cache: where each layer's index came from, and the requests it made. */
  async function indexFromEmptyCache(name: string, image: string): Promise<{ sources: string[]; requests: string[] }> {
    const trace = join(setup.work, `${name}.trace`);
    const res = await krgo(['index', image, '--cache-dir', join(setup.work, `cache-${name}`)], { KRGO_TRACE_HTTP: trace });
    assert.equal(res.code, 0, res.stderr);
    const sources = [...res.stdout.matchAll(/^layer \d+ \w+: (\w+),/gm)].map((m) => m[1]!);
    return { sources, requests: (await readFile(trace, 'utf8')).trim().split('\n') };
  }
  const viaReferrers = (requests: string[]) => requests.filter((r) => /\/referrers\/|\/manifests\/sha256-/.test(r));

  before(async () => {
    setup = await startBusyboxRegistry('tagged-indexes');
  });
  after(async () => {
    await setup.stop();
  });

  it('index --push by tag lists the artifact under <tag>.krgo-indexes, and a mount by tag needs no referrers lookup', async () => {
    const pushed = await krgo(['index', '--push', setup.image, '--cache-dir', join(setup.work, 'cache-pusher')]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.deepEqual(await taggedSubjects(), [await manifestDigest('latest')]);
    const { sources, requests } = await indexFromEmptyCache('by-tag', setup.image);
    assert.ok(sources.length > 0 && sources.every((s) => s === 'registry'), `indexes from the registry: ${sources.join(', ')}`);
    assert.deepEqual(viaReferrers(requests), [], 'no referrers lookup');
    // The tag-keyed manifest embeds the config and the indexes: no blob is asked for.
    assert.deepEqual(requests.filter((r) => r.includes('/blobs/')), [], 'config and indexes come with the tag-keyed manifest');
    const tagList = requests.findIndex((r) => r.includes('/manifests/latest.krgo-indexes'));
    const manifest = requests.findIndex((r) => / GET \S+\/manifests\/latest /.test(r));
    assert.ok(tagList >= 0 && manifest >= 0, requests.join('\n'));
    // Every index cached: the profile of the artifact being replaced is looked up through the
    // same list, so the only referrers lookup left is the push's own (to list the new artifact).
    const trace = join(setup.work, 'again.trace');
    const again = await krgo(['index', '--push', setup.image, '--cache-dir', join(setup.work, 'cache-pusher')], { KRGO_TRACE_HTTP: trace });
    assert.equal(again.code, 0, again.stderr);
    const lookups = (await readFile(trace, 'utf8')).split('\n').filter((r) => / GET \S+\/referrers\//.test(r));
    assert.equal(lookups.length, 1, lookups.join('\n'));
  });

  it('KRGO_TRACE_PHASES: a mount by tag with an empty cache writes its way to ready, step by step, in order', async () => {
    const mountpoint = join(setup.work, 'mnt-phases');
    const cacheDir = join(setup.work, 'cache-phases');
    const trace = join(setup.work, 'mount.phases');
    await mkdir(mountpoint, { recursive: true });
    const res = await krgo(['mount', '-d', setup.image, mountpoint, '--cache-dir', cacheDir], { KRGO_TRACE_PHASES: trace });
    assert.equal(res.code, 0, res.stderr);
    try {
      const lines = (await readFile(trace, 'utf8')).trim().split('\n');
      // `-d`: the command starts again in the background; its own clock starts with it.
      const mounting = lines.slice(lines.lastIndexOf(lines.filter((l) => l.endsWith(' cli loaded')).pop()!));
      const steps = mounting.map((l) => l.slice(l.indexOf(' ') + 1));
      const times = mounting.map((l) => Number(l.slice(0, l.indexOf(' '))));
      const expected = ['cli loaded', 'mount command', 'manifest asked', 'manifest resolved', 'index artifact listed', 'early kernel mount asked', 'config and index artifact in', 'indexes in hand', 'tree started', 'tree built', 'kernel mount up', 'ready'];
      assert.deepEqual(steps.filter((s) => expected.includes(s)), expected, mounting.join('\n'));
      // By tag, the indexes embedded beside the tag are decoded while that manifest still arrives.
      assert.ok(steps.some((s) => /^index of \w{12} decoded as it came$/.test(s)), 'each index decoded is a step');
      assert.ok(steps.indexOf('manifest asked') < steps.findIndex((s) => s.endsWith('decoded as it came')), 'decoded after the requests went out');
      assert.ok(!steps.some((s) => /^index of \w{12} (fetched|decoded)$/.test(s)), `none fetched or decoded again:\n${steps.join('\n')}`);
      assert.ok(times.every((t, i) => Number.isFinite(t) && (i === 0 || t >= times[i - 1]!)), `times in order: ${times.join(' ')}`);
    } finally {
      await unmount(mountpoint, cacheDir);
    }
  });

  it('a tag moved since: the list names another manifest, so the referrers of the new one are asked, and found', async () => {
    const before = await manifestDigest('latest');
    // The same layers in an OCI manifest: another digest under the same tag.
    await skopeoPush(join(setup.work, 'layout'), 'busybox', setup.image, 'oci');
    const moved = await manifestDigest('latest');
    assert.notEqual(moved, before);
    // Indexed by digest: the manifest kept beside the tag is not touched and still names the old image.
    const byDigest = await krgo(['index', '--push', `${repo()}@${moved}`, '--cache-dir', join(setup.work, 'cache-pusher')]);
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.deepEqual(await taggedSubjects(), [before]);
    const stale = await indexFromEmptyCache('stale', setup.image);
    assert.ok(stale.sources.every((s) => s === 'registry'), `indexes from the registry: ${stale.sources.join(', ')}`);
    assert.ok(viaReferrers(stale.requests).length > 0, 'the referrers of the new manifest were asked');
    // Indexed by tag again: the new manifest is listed last, the old one kept (another platform's, for all it knows).
    const byTag = await krgo(['index', '--push', setup.image, '--cache-dir', join(setup.work, 'cache-pusher')]);
    assert.equal(byTag.code, 0, byTag.stderr);
    assert.deepEqual(await taggedSubjects(), [before, moved]);
    const fresh = await indexFromEmptyCache('fresh', setup.image);
    assert.ok(fresh.sources.every((s) => s === 'registry'));
    assert.deepEqual(viaReferrers(fresh.requests), []);
  });

  it('a mount caches the indexes it fetched; a cache that cannot take them is a warning, and the mount serves all the same', async () => {
    const mountpoint = join(setup.work, 'mnt-cached');
    const cacheDir = join(setup.work, 'cache-mount');
    await mountDaemon(setup.image, mountpoint, cacheDir);
    assert.ok((await stat(join(mountpoint, 'bin/busybox'))).size > 0);
    await unmount(mountpoint, cacheDir);
    const cached = await readdir(join(cacheDir, 'index/sha256'));
    assert.ok(cached.some((name) => name.endsWith('.idx')) && !cached.some((name) => name.includes('.tmp-')), cached.join(', '));

    // A read-only index directory (a bind mount: root writes anywhere else): every write fails.
    const readOnly = join(setup.work, 'cache-ro');
    const indexDir = join(readOnly, 'index/sha256');
    await mkdir(indexDir, { recursive: true });
    await runOk('mount', ['--bind', indexDir, indexDir]);
    const roMountpoint = join(setup.work, 'mnt-ro');
    try {
      await runOk('mount', ['-o', 'remount,bind,ro', indexDir]);
      await mkdir(roMountpoint);
      const mounted = await krgo(['mount', '-d', setup.image, roMountpoint, '--cache-dir', readOnly]);
      assert.equal(mounted.code, 0, mounted.stderr);
      assert.match(mounted.stderr, /warning: the index of layer sha256:\w+ is not cached \(.*read-only file system.*\); the next run fetches it again/);
      const fromMount = await readFile(join(roMountpoint, 'bin/busybox'));
      assert.ok(fromMount.length > 0, 'a file reads through the mount');
      await unmount(roMountpoint, readOnly);
      assert.deepEqual(await readdir(indexDir), []);
    } finally {
      await unmount(roMountpoint, readOnly).catch(() => undefined);
      await runOk('umount', [indexDir]);
    }
  });

  it('index --push builds again, in the form pushed indexes have, an index a pull made here; a pushed one is kept', async () => {
    const cache = join(setup.work, 'cache-pulled');
    const pulled = await krgo(['pull', setup.image, '-r', join(setup.work, 'rootfs-pulled'), '--cache-dir', cache, '-q']);
    assert.equal(pulled.code, 0, pulled.stderr);
    const sourcesOf = (stdout: string) => [...stdout.matchAll(/^layer \d+ \w+: (\w+),/gm)].map((m) => m[1]!);
    const local = await krgo(['index', setup.image, '--cache-dir', cache]);
    assert.equal(local.code, 0, local.stderr);
    assert.ok(sourcesOf(local.stdout).every((s) => s === 'cache'), `without --push the pull's indexes serve: ${local.stdout}`);
    const pushed = await krgo(['index', '--push', setup.image, '--cache-dir', cache]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const sources = sourcesOf(pushed.stdout);
    assert.ok(sources.length > 0 && sources.every((s) => s === 'registry' || s === 'built'), `not the pull's whole-window indexes: ${sources.join(', ')}`);
    const again = await krgo(['index', '--push', setup.image, '--cache-dir', cache]);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(sourcesOf(again.stdout).every((s) => s === 'cache'), `the pushed form is kept: ${again.stdout}`);
  });
});
