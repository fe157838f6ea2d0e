import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { OciLayoutWriter, skopeoPush, umociUnpack } from '../support/oci-layout.js';
import { busyboxImage, edgeCaseImage, estargzEntries, headerImage, nonUtf8Layers } from '../support/fixtures.js';
import { buildEstargz } from '../support/estargz-writer.js';
import { TOC_DIGEST_ANNOTATION } from '../../src/index/estargz.js';
import { debianImageLayout, DEBIAN_TAG } from '../support/debian-image.js';
import { diffTrees, snapshotTree } from '../support/tree-snapshot.js';
import { mountDaemon, unmount } from '../support/mounts.js';
import { krgo, KRGO_COMMAND } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { run } from '../support/run.js';
import { isMounted } from '../../src/mount/mount-table.js';
import { readStatus } from '../../src/mount/mount-status.js';

describe('krgo mount: a lazy FUSE mount equal to umoci unpack', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const mounted: { mp: string; cacheDir: string }[] = [];
  const cache = () => join(work.path, 'cache');

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('mount');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('edge', edgeCaseImage());
    await layout.addImage('edge-mixed', edgeCaseImage(['gzip', 'none', 'zstd']));
    await layout.addImage('busybox', busyboxImage());
    await layout.addImage('headers', headerImage());
    await layout.addImage('names', { layers: nonUtf8Layers().map((tar) => ({ tar })) });
    const stargz = buildEstargz(estargzEntries(), 64 * 1024);
    await layout.addImage('estargz', { layers: [{ tar: stargz.tar, blob: stargz.blob, annotations: { [TOC_DIGEST_ANNOTATION]: stargz.tocDigest } }] });
    await layout.finish();
    const dir = join(work.path, 'layout');
    await skopeoPush(dir, 'edge', `${registry.host}/edge:v2s2`, 'v2s2');
    await skopeoPush(dir, 'edge-mixed', `${registry.host}/edge:mixed`, 'oci');
    await skopeoPush(dir, 'busybox', `${registry.host}/busybox:latest`, 'v2s2');
    await skopeoPush(dir, 'headers', `${registry.host}/headers:latest`, 'oci');
    await skopeoPush(dir, 'names', `${registry.host}/names:v1`, 'oci');
    await skopeoPush(dir, 'estargz', `${registry.host}/estargz:latest`, 'oci');
    await skopeoPush(await debianImageLayout(), DEBIAN_TAG, `${registry.host}/library/debian:bookworm`, 'v2s2');
    proxy = await startFaultProxy(registry.host);
  });

  after(async () => {
    for (const { mp, cacheDir } of mounted) await unmount(mp, cacheDir).catch(() => undefined);
    await proxy?.stop();
    await registry?.stop();
    await work?.remove();
  });

  async function mountAt(image: string, name: string): Promise<string> {
    const mp = join(work.path, 'mnt', name);
    mounted.push({ mp, cacheDir: cache() });
    await mountDaemon(image, mp, cache());
    return mp;
  }

  for (const [name, image, oracleImage] of [
    ['edge cases, Docker v2s2 gzip', 'edge:v2s2', 'edge:v2s2'],
    ['edge cases, gzip + uncompressed + zstd layers', 'edge:mixed', 'edge:v2s2'],
    ['file names that are not UTF-8, kept as bytes', 'names:v1', 'names:v1'],
  ] as const) {
    it(name, async () => {
      const mp = await mountAt(`${registry.host}/${image}`, image.replace(':', '-'));
      const oracle = await umociUnpack(`${registry.host}/${oracleImage}`, join(work.path, `oracle-${image.replace(':', '-')}`));
      assert.deepEqual(diffTrees(await snapshotTree(oracle), await snapshotTree(mp)), []);
      await unmount(mp, cache());
      assert.equal(isMounted(mp), false);
    });
  }

  it('an eStargz image is indexed from its TOC by range requests (no pass) and equals umoci', async () => {
    proxy.seen.length = 0;
    proxy.bytesSent = 0;
    const stargzCache = join(work.path, 'cache-stargz');
    const mp = join(work.path, 'mnt', 'estargz');
    mounted.push({ mp, cacheDir: stargzCache });
    await mountDaemon(`${proxy.host}/estargz:latest`, mp, stargzCache);
    const status = (await readStatus(stargzCache, mp))!;
    assert.ok(proxy.bytesSent < status.layers[0]!.size / 2, `ready after ${proxy.bytesSent} bytes of a ${status.layers[0]!.size}-byte layer`);
    assert.ok(proxy.seen.filter((r) => r.path.includes('/blobs/sha256:') && r.range).length >= 2, 'footer and TOC read with Range');
    const oracle = await umociUnpack(`${registry.host}/estargz:latest`, join(work.path, 'oracle-estargz'));
    assert.deepEqual(diffTrees(await snapshotTree(oracle), await snapshotTree(mp)), []);
    const shell = await run('chroot', [mp, '/bin/busybox', 'cat', '/etc/motd']);
    assert.equal(shell.stdout, 'hello from an eStargz layer\n', shell.stderr);
    await unmount(mp, stargzCache);
  });

  it('a real Debian image: tree equals umoci; python3 runs under chroot and systemd-nspawn', async () => {
    const mp = await mountAt(`${registry.host}/library/debian:bookworm`, 'debian');
    const chroot = await run('chroot', [mp, '/usr/bin/python3', '-c', 'print(42)']);
    assert.equal(chroot.stdout, '42\n', chroot.stderr);
    const nspawn = await run('systemd-nspawn', ['--pipe', '--read-only', '--register=no', '--keep-unit', '-q', '-D', mp, '/usr/bin/python3', '-c', 'print(6 * 7)']);
    assert.equal(nspawn.stdout.trim(), '42', nspawn.stderr);
    const oracle = await umociUnpack(`${registry.host}/library/debian:bookworm`, join(work.path, 'oracle-debian'));
    assert.deepEqual(diffTrees(await snapshotTree(oracle), await snapshotTree(mp)), []);
    // A FUSE mount is nodev: a plain chroot cannot open /dev/null; krgo run sets /dev, /proc, /sys up.
    const devNull = ['/usr/bin/perl', '-e', 'open(my $f, ">", "/dev/null") or die "no /dev/null: $!\\n"; print "ok\\n"'];
    assert.notEqual((await run('chroot', [mp, ...devNull])).code, 0, 'plain chroot: no usable /dev/null');
    const perl = await krgo(['run', mp, '--', ...devNull]);
    assert.equal(perl.stdout, 'ok\n', perl.stderr);
    const shell = await krgo(['run', mp, '-w', '/etc', '-e', 'KRGO_TEST=yes', '--', '/bin/sh', '-c', 'echo "$PATH"; pwd; echo "$KRGO_TEST"; head -c 4 /proc/self/status']);
    assert.equal(shell.code, 0, shell.stderr);
    assert.equal(shell.stdout, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/etc\nyes\nName', 'the image\'s PATH, the working directory, the extra variable, /proc');
    assert.doesNotMatch(await readFile('/proc/self/mountinfo', 'utf8'), new RegExp(`${mp}/(dev|proc|sys)`), 'its mounts went with it');
    const write = await run('sh', ['-c', `echo x > ${mp}/etc/new-file`]);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /Read-only file system/);
    await unmount(mp, cache());
  });

  it('reading one small file of an indexed image fetches a small share of the layers', async () => {
    // A cache holding the indexes only (krgo index), no spans: this mount reads no layer in full.
    const lazyCache = join(work.path, 'cache-lazy');
    const indexed = await krgo(['index', `${registry.host}/library/debian:bookworm`, '--cache-dir', lazyCache]);
    assert.equal(indexed.code, 0, indexed.stderr);
    proxy.seen.length = 0;
    proxy.bytesSent = 0;
    const mp = join(work.path, 'mnt', 'debian-lazy');
    mounted.push({ mp, cacheDir: lazyCache });
    await mountDaemon(`${proxy.host}/library/debian:bookworm`, mp, lazyCache);
    const before = proxy.bytesSent;
    assert.equal(await readFile(join(mp, 'etc/krgo-release'), 'utf8'), 'built by krgo tests\n');
    assert.match(await readFile(join(mp, 'etc/debian_version'), 'utf8'), /^12\./);
    const layersBytes = (await readStatus(lazyCache, mp))!.layers.reduce((a, l) => a + l.size, 0);
    const fetched = proxy.bytesSent - before;
    assert.ok(fetched > 0 && fetched < layersBytes * 0.1, `reading two small files fetched ${fetched} of ${layersBytes} bytes`);
    assert.ok(before < layersBytes * 0.05, `mounting with cached indexes fetched ${before} bytes (manifest and config only)`);
    await new Promise((r) => setTimeout(r, 1200));
    const status = await krgo(['status', mp, '--cache-dir', lazyCache]);
    assert.match(status.stdout, /up \(pid \d+\)/);
    assert.match(status.stdout, new RegExp(`total +\\d[\\d.]* [kM]?B of +${(layersBytes / 1e6).toFixed(1).replace('.', '\\.')} MB`));
    await unmount(mp, lazyCache);
  });

  it('indexes pushed to the registry let a second machine mount without scanning any layer', async () => {
    const pushed = await krgo(['index', '--push', `${registry.host}/library/debian:bookworm`, '--cache-dir', join(work.path, 'cache-machine-a')]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, /pushed index artifact sha256:[a-f0-9]{64} \(subject sha256:/);
    proxy.seen.length = 0;
    proxy.bytesSent = 0;
    const mp = join(work.path, 'mnt', 'machine-b');
    mounted.push({ mp, cacheDir: join(work.path, 'cache-machine-b') });
    const machineB = join(work.path, 'cache-machine-b');
    await mountDaemon(`${proxy.host}/library/debian:bookworm`, mp, machineB);
    const status = (await readStatus(machineB, mp))!;
    assert.deepEqual(status.layers.map((l) => l.indexSource), ['registry', 'registry', 'registry']);
    const layersBytes = status.layers.reduce((a, l) => a + l.size, 0);
    const indexBytes = status.layers.reduce((a, l) => a + l.indexBytes, 0);
    assert.ok(proxy.bytesSent < indexBytes + 100_000, `ready after ${proxy.bytesSent} bytes: indexes (${indexBytes}) and manifests, no layer (${layersBytes})`);
    // By tag: through the manifest kept beside the tag, asked with the image's (no referrers lookup).
    assert.ok(proxy.seen.some((r) => r.path.endsWith('/manifests/bookworm.krgo-indexes')), 'found through the manifest kept beside the tag');
    assert.ok(!proxy.seen.some((r) => /\/manifests\/sha256-[a-f0-9]{64}$|\/referrers\//.test(r.path)), 'no referrers lookup');
    const run42 = await run('chroot', [mp, '/usr/bin/python3', '-c', 'print(42)']);
    assert.equal(run42.stdout, '42\n', run42.stderr);
    await unmount(mp, machineB);
  });

  it('--prefetch-command fetches the image command (python3) and its libraries right after ready', async () => {
    // python3 run on two fresh mounts (indexes cached, no spans), with and without the prefetch.
    const rangedDuringPython = async (name: string, extra: string[]): Promise<{ atReady: number; python: number }> => {
      const cache = join(work.path, `cache-${name}`);
      const indexed = await krgo(['index', `${registry.host}/library/debian:bookworm`, '--cache-dir', cache]);
      assert.equal(indexed.code, 0, indexed.stderr);
      const mp = join(work.path, 'mnt', name);
      mounted.push({ mp, cacheDir: cache });
      await mkdir(mp, { recursive: true });
      proxy.seen.length = 0;
      const res = await krgo(['mount', '-d', `${proxy.host}/library/debian:bookworm`, mp, '--cache-dir', cache, ...extra]);
      assert.equal(res.code, 0, res.stderr);
      await new Promise((r) => setTimeout(r, 2000));
      const atReady = proxy.seen.filter((r) => r.range).length;
      const python = await run('chroot', [mp, '/usr/bin/python3', '-c', 'print(6 * 7)']);
      assert.equal(python.stdout, '42\n', python.stderr);
      const total = proxy.seen.filter((r) => r.range).length;
      await unmount(mp, cache);
      return { atReady, python: total - atReady };
    };
    const plain = await rangedDuringPython('debian-no-prefetch', []);
    const prefetched = await rangedDuringPython('debian-prefetch', ['--prefetch-command']);
    assert.equal(plain.atReady, 0, 'without the flag nothing is fetched before a read');
    // The config's Cmd is /usr/bin/python3: its binary (layer 2), loader and libraries (layer 1).
    assert.ok(prefetched.atReady >= 2, `fetched before any read: ${prefetched.atReady} range requests`);
    assert.ok(prefetched.python < plain.python, `python needed ${prefetched.python} range requests after the prefetch, ${plain.python} without`);
  });

  /** The blob of seek windows the newest index artifact of `repo:tag` stores with its access profile. */
  async function profileWindowsDigest(repo: string, tag: string): Promise<string | undefined> {
    return [...(await taggedMembers(repo, tag))].reverse().find((l) => l.mediaType === 'application/vnd.krgo.access-profile-windows.v1')?.digest;
  }

  /** The manifest kept beside the tag: the members of the artifact of each image under it. */
  async function taggedMembers(repo: string, tag: string): Promise<{ mediaType: string; digest: string; data?: string }[]> {
    const res = await fetch(`http://${registry.host}/v2/${repo}/manifests/${tag}.krgo-indexes`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200);
    return ((await res.json()) as { layers: { mediaType: string; digest: string; data?: string }[] }).layers;
  }

  /** The ranges an access profile in the registry plans for its replay, as `digest start-end` (end inclusive, as in Range headers). */
  async function plannedFetches(repo: string, tag: string): Promise<string[]> {
    const member = [...(await taggedMembers(repo, tag))].reverse().find((l) => l.mediaType === 'application/vnd.krgo.access-profile.v1+json');
    assert.ok(member?.data, 'the profile is embedded');
    const { fetches } = JSON.parse(Buffer.from(member.data, 'base64').toString()) as { fetches?: { blobs: string[]; ranges: [number, number, number][] } };
    assert.ok(fetches && fetches.ranges.length > 0, 'the profile plans its fetches');
    return fetches.ranges.map(([k, start, end]) => `${fetches.blobs[k]} ${start}-${end - 1}`);
  }

  it('an access profile recorded on one mount and pushed with the indexes is fetched at once by the next', async () => {
    const image = `${registry.host}/library/debian:bookworm`;
    const recordCache = join(work.path, 'cache-record');
    const profile = join(work.path, 'python.profile');
    const recordMp = join(work.path, 'mnt', 'record');
    await mkdir(recordMp, { recursive: true });
    mounted.push({ mp: recordMp, cacheDir: recordCache });
    const recording = await krgo(['mount', '-d', '--record-profile', profile, image, recordMp, '--cache-dir', recordCache]);
    assert.equal(recording.code, 0, recording.stderr);
    const first = await run('chroot', [recordMp, '/usr/bin/python3', '-c', 'print(6 * 7)']);
    assert.equal(first.stdout, '42\n', first.stderr);
    await unmount(recordMp, recordCache);
    const recorded = JSON.parse(await readFile(profile, 'utf8')) as { version: number; files: { path: string; ranges: [number, number][] }[] };
    assert.equal(recorded.version, 1);
    const paths = recorded.files.map((f) => f.path);
    assert.equal(paths[0], '/usr/bin/python3.11', 'the binary the kernel loads first comes first');
    assert.ok(paths.some((p) => /\/libc\.so\.6$/.test(p)), `libc among ${paths.join(' ')}`);
    assert.ok(paths.some((p) => /\/encodings\//.test(p)), 'python modules among the files');
    assert.ok(recorded.files.every((f) => f.ranges.length > 0 && f.ranges.every(([o, l]) => o % 4096 === 0 && l > 0)));

    const pushed = await krgo(['index', '--push', '--profile', profile, image, '--cache-dir', recordCache]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, new RegExp(`access profile of ${paths.length} files with \\d+ seek windows`));
    // Indexing again without --profile keeps what was recorded (and the mount below proves it),
    // its seek windows made again for the indexes pushed with it.
    const reindexed = await krgo(['index', '--push', image, '--cache-dir', recordCache]);
    assert.equal(reindexed.code, 0, reindexed.stderr);
    assert.match(reindexed.stdout, new RegExp(`keeping the access profile of the artifact it replaces \\(${paths.length} files`));
    const windowsBlob = await profileWindowsDigest('library/debian', 'bookworm');
    assert.ok(windowsBlob, 'the artifact lists the profile windows blob');
    const misuse = await krgo(['index', '--no-profile', image, '--cache-dir', recordCache]);
    assert.equal(misuse.code, 2);
    assert.match(misuse.stderr, /use them with --push/);

    // A fresh machine: the profile comes with the indexes and is fetched before python asks.
    const fresh = async (name: string, extra: string[]) => {
      const cacheDir = join(work.path, `cache-${name}`);
      const mp = join(work.path, 'mnt', name);
      await mkdir(mp, { recursive: true });
      mounted.push({ mp, cacheDir });
      proxy.seen.length = 0;
      const res = await krgo(['mount', '-d', `${proxy.host}/library/debian:bookworm`, mp, '--cache-dir', cacheDir, ...extra]);
      assert.equal(res.code, 0, res.stderr);
      return { mp, cacheDir };
    };
    const replay = await fresh('replay', []);
    let status = await readStatus(replay.cacheDir, replay.mp);
    for (let i = 0; i < 600 && !status?.prefetch?.done; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await readStatus(replay.cacheDir, replay.mp);
    }
    assert.deepEqual(status?.prefetch, { files: paths.length, missing: 0, done: true });
    const prefetched = proxy.seen.filter((r) => r.range).length;
    assert.ok(prefetched > 0, 'the profile was fetched before any read');
    // The ranges planned when the profile was pushed went out as the profile arrived, and its
    // replay found all it needed among them: nothing else, nothing twice.
    const asked = proxy.seen.flatMap((r) => (r.range ? r.range.replace(/^bytes=/, '').split(',').map((part) => `${r.path.slice(r.path.lastIndexOf('/') + 1)} ${part.trim()}`) : []));
    assert.deepEqual([...asked].sort(), [...(await plannedFetches('library/debian', 'bookworm'))].sort());
    // Sent as soon as the profile was read: before the indexes were decoded, after which the
    // profile's windows blob is asked for.
    const windowsAsked = proxy.seen.findIndex((r) => !r.range && r.path.endsWith(`/blobs/${windowsBlob}`));
    assert.ok(proxy.seen.findIndex((r) => r.range) < windowsAsked, 'the planned ranges were asked for before the windows blob');
    // Its windows blob came whole, once, while the tree was built: no window of it by range.
    const windowsRequests = proxy.seen.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${windowsBlob}`));
    assert.deepEqual(
      windowsRequests.map((r) => r.range),
      [undefined],
      'the profile windows blob fetched whole, once',
    );
    const again = await run('chroot', [replay.mp, '/usr/bin/python3', '-c', 'print(6 * 7)']);
    assert.equal(again.stdout, '42\n', again.stderr);
    assert.equal(proxy.seen.filter((r) => r.range).length, prefetched, 'python3 found everything it read already fetched');
    const shown = await krgo(['status', replay.mp, '--cache-dir', replay.cacheDir]);
    assert.match(shown.stdout, new RegExp(`access profile: ${paths.length} files, all fetched`));
    await unmount(replay.mp, replay.cacheDir);

    // Again on that machine: indexes and spans are cached, the profile is still looked up (after
    // ready) and replayed from the disk cache, with no range request.
    proxy.seen.length = 0;
    const remount = await krgo(['mount', '-d', `${proxy.host}/library/debian:bookworm`, replay.mp, '--cache-dir', replay.cacheDir]);
    assert.equal(remount.code, 0, remount.stderr);
    let warm = await readStatus(replay.cacheDir, replay.mp);
    for (let i = 0; i < 600 && !warm?.prefetch?.done; i++) {
      await new Promise((r) => setTimeout(r, 100));
      warm = await readStatus(replay.cacheDir, replay.mp);
    }
    assert.deepEqual(warm?.prefetch, { files: paths.length, missing: 0, done: true });
    assert.deepEqual(warm?.layers.map((l) => l.indexSource), ['cache', 'cache', 'cache']);
    assert.equal(proxy.seen.filter((r) => r.range).length, 0, 'everything it names was on disk');
    await unmount(replay.mp, replay.cacheDir);

    const off = await fresh('no-prefetch', ['--no-prefetch']);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(proxy.seen.filter((r) => r.range).length, 0, '--no-prefetch fetches nothing before a read');
    assert.equal((await readStatus(off.cacheDir, off.mp))?.prefetch, undefined);
    await unmount(off.mp, off.cacheDir);

    // A local profile (a plain list of paths) takes the place of the pushed one.
    const list = join(work.path, 'list.profile');
    await writeFile(list, '# python alone\n/usr/bin/python3\n/no/such/file\n');
    const local = await fresh('local-profile', ['--profile', list]);
    let localStatus = await readStatus(local.cacheDir, local.mp);
    for (let i = 0; i < 600 && !localStatus?.prefetch?.done; i++) {
      await new Promise((r) => setTimeout(r, 100));
      localStatus = await readStatus(local.cacheDir, local.mp);
    }
    assert.deepEqual(localStatus?.prefetch, { files: 2, missing: 1, done: true });
    const python = localStatus!.layers[1]!;
    assert.ok(python.fetched > 1_000_000 && localStatus!.layers[0]!.fetched === 0, 'the python binary (layer 2) and nothing of the base layer');
    await unmount(local.mp, local.cacheDir);
    const missingFile = await krgo(['mount', `${registry.host}/library/debian:bookworm`, local.mp, '--cache-dir', local.cacheDir, '--profile', join(work.path, 'nope.profile')]);
    assert.equal(missingFile.code, 2, missingFile.stderr);
    assert.match(missingFile.stderr, /cannot read the access profile .*nope\.profile: no such file/);
  });

  it("a C header's first read fetches the headers it includes, and theirs, before anything reads them", async () => {
    const mp = await mountAt(`${proxy.host}/headers:latest`, 'headers');
    const requests = () => proxy.seen.filter((r) => r.range).length;
    const before = requests();
    const top = await run('cat', [join(mp, 'usr/include/top.h')]);
    assert.match(top.stdout, /#include <sys\/mid.h>/, top.stderr);
    // Settled: top.h's, mid.h's and leaf.h's ranges asked for (one request each: each wave waits
    // for the one before), and no new one for half a second; given up after 20 s (the checks
    // below then tell why).
    for (let seen = -1, waited = 0; (seen !== requests() || requests() < before + 3) && waited < 20_000; waited += 500) {
      seen = requests();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    proxy.setFaults((r) => (r.range ? { kind: 'status', status: 403 } : undefined));
    try {
      // mid.h and leaf.h were fetched ahead: they read with the registry refusing every range.
      assert.equal((await run('cat', [join(mp, 'usr/include/sys/mid.h')])).stdout, '#pragma once\n#include "leaf.h"\n');
      assert.equal((await run('cat', [join(mp, 'usr/include/sys/leaf.h')])).stdout, 'int leaf;\n');
      // A file no header names was not: the refusals are real.
      const filler = await run('cat', [join(mp, 'usr/share/filler-1.bin')]);
      assert.notEqual(filler.code, 0);
      assert.match(filler.stderr, /Input\/output error/);
    } finally {
      proxy.setFaults(() => undefined);
    }
    await unmount(mp, cache());
  });

  it('a failed fetch answers EIO, is logged, and the mount stays up', async () => {
    proxy.setFaults((r) => (r.path.includes('/blobs/') && r.method === 'GET' && r.range ? { kind: 'status', status: 403 } : undefined));
    const mp = await mountAt(`${proxy.host}/busybox:latest`, 'faulty');
    const failed = await run('cat', [join(mp, 'bin/busybox')]);
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /Input\/output error/);
    proxy.setFaults(() => undefined);
    const again = await run('chroot', [mp, '/bin/sh', '-c', 'cat /etc/motd']);
    assert.equal(again.stdout, 'hello from krgo\n', again.stderr);
    const log = await readFile(join(cache(), 'mounts', `${mp.replace(/[^A-Za-z0-9]+/g, '_')}.log`), 'utf8');
    assert.match(log, /read of \/bin\/busybox at \d+ failed: .*HTTP 403|access denied/);
    await unmount(mp, cache());
  });

  it('SIGTERM unmounts cleanly and exits 0, before ready it cancels and leaves nothing mounted; a SIGKILLed mount is cleared by krgo umount', async () => {
    const mp = join(work.path, 'mnt', 'signals');
    await mkdir(mp, { recursive: true });
    mounted.push({ mp, cacheDir: cache() });
    const waitReady = async (pid: number | undefined) => {
      for (let i = 0; i < 600; i++) {
        const status = await readStatus(cache(), mp);
        if (status?.pid === pid && status?.readyAt) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('mount not ready');
    };
    const child = spawn(KRGO_COMMAND, ['mount', `${registry.host}/busybox:latest`, mp, '--cache-dir', cache(), '-q'], { stdio: 'ignore' });
    await waitReady(child.pid);
    assert.ok(isMounted(mp));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(isMounted(mp), false, 'no mount left behind');

    // SIGTERM before ready: the kernel mount made while the indexes come (debian's were pushed
    // above) goes with the cancelled mount. Blobs never answer, so the mount cannot finish first:
    // by digest, the image config is one (by tag it comes with the indexes, in the manifest kept
    // beside the tag, and nothing would hold the mount).
    const head = await fetch(`http://${registry.host}/v2/library/debian/manifests/bookworm`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
    });
    const pinned = `${proxy.host}/library/debian@${head.headers.get('docker-content-digest')!}`;
    proxy.setFaults((r) => (r.path.includes('/blobs/') ? { kind: 'no-answer' } : undefined));
    const early = join(work.path, 'mnt', 'signals-early');
    await mkdir(early, { recursive: true });
    mounted.push({ mp: early, cacheDir: join(work.path, 'cache-signals') });
    const cancelled = spawn(KRGO_COMMAND, ['mount', pinned, early, '--cache-dir', join(work.path, 'cache-signals'), '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let cancelledStderr = '';
    cancelled.stderr.on('data', (d: Buffer) => (cancelledStderr += d.toString()));
    const cancelledExit = new Promise<number | null>((r) => cancelled.once('exit', (code) => r(code)));
    for (let i = 0; i < 600 && !isMounted(early); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(isMounted(early), 'mounted while the indexes come');
    cancelled.kill('SIGTERM');
    assert.equal(await cancelledExit, 130, cancelledStderr);
    proxy.setFaults(() => undefined);
    assert.match(cancelledStderr, /interrupted: the mount of .* was cancelled before it was ready; nothing is left mounted/);
    assert.equal(isMounted(early), false, 'the early kernel mount went with it');
    assert.equal(await readStatus(join(work.path, 'cache-signals'), early), undefined);

    const killed = spawn(KRGO_COMMAND, ['mount', `${registry.host}/busybox:latest`, mp, '--cache-dir', cache(), '-q'], { stdio: 'ignore' });
    await waitReady(killed.pid);
    const gone = new Promise((r) => killed.once('exit', r));
    killed.kill('SIGKILL');
    await gone;
    const res = await krgo(['umount', mp, '--cache-dir', cache()]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(isMounted(mp), false);
    assert.deepEqual(await readdir(mp), [], 'the mountpoint is usable again');

    // Unmounted from outside (umount, fusermount -u): the mount process notices and exits 0.
    const outside = spawn(KRGO_COMMAND, ['mount', `${registry.host}/busybox:latest`, mp, '--cache-dir', cache(), '-q'], { stdio: 'ignore' });
    await waitReady(outside.pid);
    const outsideExit = new Promise<number | null>((r) => outside.once('exit', (code) => r(code)));
    await run('fusermount', ['-u', mp]);
    assert.equal(await outsideExit, 0, 'the mount process ends when its mount is gone');
  });
});
