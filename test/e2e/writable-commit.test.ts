import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { skopeoPush, umociUnpack } from '../support/oci-layout.js';
import { debianImageLayout, DEBIAN_TAG } from '../support/debian-image.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { unmount } from '../support/mounts.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { run, runOk } from '../support/run.js';
import { diffTrees, snapshotTree } from '../support/tree-snapshot.js';
import { readStatus } from '../../src/mount/mount-status.js';

/**
 * The changes the test makes, as one shell script: run by systemd-nspawn in the writable mount,
 * and by chroot in a copy of umoci's tree of the base (the oracle). Every path it writes gets a
 * fixed time at the end (directories included), so both trees agree to the nanosecond, directory
 * times too; paths it only chmods or chowns keep the base's times (overlayfs copies them up).
 */
const CHANGES = `
set -e
echo created > /root/created
echo overwritten > /etc/hostname
echo "extra:x:1234:1234::/:/bin/false" >> /etc/passwd
rm /etc/debian_version
rm -r /etc/cron.daily
rm -r /etc/logrotate.d && echo "now a file" > /etc/logrotate.d
rm /etc/issue && mkdir /etc/issue && echo inside > /etc/issue/inside
chmod 600 /etc/issue.net
chown 1234:1234 /etc/shells
touch -h -d '2001-02-03 04:05:06.123456789' /etc/host.conf
ln /root/created /root/created-link
ln /etc/profile /etc/profile-link
mv /etc/apt /etc/apt-moved
yes kkkkkkkkkkkkkkk | head -c 52428800 > /opt/big
for p in /root/created /root /etc/hostname /etc/passwd /etc /etc/logrotate.d /etc/issue /etc/issue/inside /opt/big /opt /etc/profile; do
  touch -h -d '2020-01-02 03:04:05.987654321' "$p"
done
echo changed
`;

/** After the first commit: a second change, for a second layer on top. */
const MORE_CHANGES = `
set -e
echo second > /root/second
rm /root/created-link
touch -h -d '2020-01-02 03:04:05.987654321' /root/second /root
echo changed
`;

/** krgo mount -w → change → krgo commit → krgo push: a derived image whose base never leaves the registry. */
describe('commit and push from a writable lazy mount', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let base = '';
  const cache = () => join(work.path, 'cache');
  const mp = () => join(work.path, 'mnt');
  let baseSize = 0;
  let baseLayerDigests: string[] = [];

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('writable-commit');
    await skopeoPush(await debianImageLayout(), DEBIAN_TAG, `${registry.host}/library/debian:bookworm`, 'v2s2');
    // Another machine indexed the base and pushed its indexes: a mount here reads no layer whole.
    const indexed = await krgo(['index', '--push', `${registry.host}/library/debian:bookworm`, '--cache-dir', join(work.path, 'cache-indexer')]);
    assert.equal(indexed.code, 0, indexed.stderr);
    proxy = await startFaultProxy(registry.host);
    base = `${proxy.host}/library/debian:bookworm`;
    const manifest = JSON.parse((await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/library/debian:bookworm`])).stdout) as { layers: { size: number; digest: string }[] };
    baseSize = manifest.layers.reduce((sum, l) => sum + l.size, 0);
    baseLayerDigests = manifest.layers.map((l) => l.digest);
  });

  after(async () => {
    for (const dir of ['mnt', 'derived', 'mnt-upper']) await unmount(join(work.path, dir), cache()).catch(() => undefined);
    await unmount(join(work.path, 'derived'), join(work.path, 'cache-b')).catch(() => undefined);
    await proxy?.stop();
    await registry?.stop();
    await work?.remove();
  });

  const nspawn = async (script: string) => {
    // No resolv.conf or journal link from the host: the change is the script's alone, as in the oracle.
    const res = await run('systemd-nspawn', ['--pipe', '--register=no', '--keep-unit', '-q', '--resolv-conf=off', '--link-journal=no', '-D', mp(), '/bin/sh', '-c', script]);
    assert.equal(res.stdout.trim(), 'changed', res.stderr);
  };

  const oracleOf = async (name: string, scripts: string[]) => {
    const baseTree = await umociUnpack(`${registry.host}/library/debian:bookworm`, join(work.path, `oracle-${name}`));
    const copy = join(work.path, `expected-${name}`);
    // cp -a keeps owners, modes, times to the nanosecond, xattrs and hardlinks.
    await runOk('cp', ['-a', baseTree, copy]);
    for (const script of scripts) {
      const res = await run('chroot', [copy, '/bin/sh', '-c', script]);
      assert.equal(res.stdout.trim(), 'changed', res.stderr);
    }
    await runOk('setfattr', ['-h', '-n', 'user.krgo.note', '-v', 'set-by-test', join(copy, 'etc/bash.bashrc')]);
    return copy;
  };

  it('commits the upper directory as a layer and pushes it; the base layers are never downloaded; the pushed image equals umoci of the base with the same changes', async () => {
    await mkdir(mp(), { recursive: true });
    const mounted = await krgo(['mount', '-d', '-w', base, mp(), '--cache-dir', cache()]);
    assert.equal(mounted.code, 0, mounted.stderr);
    await nspawn(CHANGES);
    await runOk('setfattr', ['-h', '-n', 'user.krgo.note', '-v', 'set-by-test', join(mp(), 'etc/bash.bashrc')]);

    const committed = await krgo(['commit', mp(), '-m', 'the test change']);
    assert.equal(committed.code, 0, committed.stderr);
    assert.match(committed.stdout, /Changes committed as layer 3 \(commit 1 on this mount\)/);
    assert.match(await readFile(join(mp(), 'root/created'), 'utf8'), /^created\n$/, 'the mount shows the same tree after a commit');
    assert.match((await krgo(['status', mp()])).stdout, /commits: 1 layer on top of the image/);

    const pushed = await krgo(['push', `${proxy.host}/library/derived:one`, '-r', mp(), '--json']);
    assert.equal(pushed.code, 0, pushed.stderr);
    const events = pushed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; layer?: number; outcome?: string; indexes?: { pushed: boolean } });
    const outcomes = events.filter((e) => e.event === 'layer-done').sort((a, b) => a.layer! - b.layer!).map((e) => e.outcome);
    assert.deepEqual(outcomes, ['mounted', 'mounted', 'mounted', 'uploaded'], 'base layers by cross-repository mount, the new one uploaded');
    assert.equal(events.find((e) => e.event === 'done')?.indexes?.pushed, true, `the index artifact went with the image: ${pushed.stdout}`);

    // Bytes the registry sent through the proxy, mount to push: what the change read, plus indexes.
    const baseLayers = new Set(baseLayerDigests);
    const fullBlobGets = proxy.seen.filter((r) => r.method === 'GET' && !r.range && baseLayers.has(r.path.slice(r.path.lastIndexOf('/') + 1)));
    assert.ok(proxy.bytesSent < baseSize * 0.25, `${proxy.bytesSent} bytes downloaded for a ${baseSize}-byte base`);
    assert.deepEqual(fullBlobGets, [], 'no base layer fetched whole');

    const expected = await oracleOf('one', [CHANGES]);
    const got = await umociUnpack(`${registry.host}/library/derived:one`, join(work.path, 'pushed-one'));
    assert.deepEqual(diffTrees(await snapshotTree(expected, { dirMtimes: true }), await snapshotTree(got, { dirMtimes: true })), []);
    // The merged view, hardlink groups aside: overlayfs without its index does not show a lower
    // file linked after copy-up (/etc/profile) as one group, though the upper directory holds one
    // (and the pushed image has it, as checked above).
    const withoutGroups = (tree: Awaited<ReturnType<typeof snapshotTree>>) => new Map([...tree].map(([path, { hardlinks: _h, ...rest }]) => [path, rest]));
    assert.deepEqual(diffTrees(withoutGroups(await snapshotTree(expected)), withoutGroups(await snapshotTree(mp()))), [], 'the writable mount shows that same tree');
  });

  it('the derived image mounts lazily from an empty cache with the pushed indexes', async () => {
    const derived = join(work.path, 'derived');
    await mkdir(derived, { recursive: true });
    const res = await krgo(['mount', '-d', `${registry.host}/library/derived:one`, derived, '--cache-dir', join(work.path, 'cache-b')]);
    assert.equal(res.code, 0, res.stderr);
    const status = (await readStatus(join(work.path, 'cache-b'), derived))!;
    assert.deepEqual(status.layers.map((l) => l.indexSource), ['registry', 'registry', 'registry', 'registry'], 'no layer scanned: every index came with the image');
    assert.equal(await readFile(join(derived, 'etc/issue/inside'), 'utf8'), 'inside\n');
    await unmount(derived, join(work.path, 'cache-b'));
  });

  it('after kill -9 and a remount the change is there; a second commit stacks and carries only the new change', async () => {
    const pid = (await readStatus(cache(), mp()))!.pid;
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await krgo(['umount', mp()])).code, 0);
    const remounted = await krgo(['mount', '-d', '-w', base, mp(), '--cache-dir', cache()]);
    assert.equal(remounted.code, 0, remounted.stderr);
    assert.equal(await readFile(join(mp(), 'root/created'), 'utf8'), 'created\n');

    const listed = await krgo(['commit', mp(), '-m', 'nothing', '--dry-run']);
    const nothing = await krgo(['commit', mp(), '-m', 'nothing']);
    assert.equal(nothing.code, 10, `nothing changed since the last commit: ${listed.stdout}${nothing.stderr}`);
    await nspawn(MORE_CHANGES);
    const second = await krgo(['commit', '-r', mp(), '-m', 'second change']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /layer 4 \(commit 2 on this mount\)[\s\S]*, [1-4] entries/);
    const pushed = await krgo(['push', `${registry.host}/library/derived:two`, '-r', mp()]);
    assert.equal(pushed.code, 0, pushed.stderr);

    const expected = await oracleOf('two', [CHANGES, MORE_CHANGES]);
    const got = await umociUnpack(`${registry.host}/library/derived:two`, join(work.path, 'pushed-two'));
    assert.deepEqual(diffTrees(await snapshotTree(expected, { dirMtimes: true }), await snapshotTree(got, { dirMtimes: true })), []);
    assert.equal((await krgo(['umount', mp()])).code, 0);
  });
  it('with --upper DIR the change is committed and pushed by its directory, also once unmounted', async () => {
    const mp2 = join(work.path, 'mnt-upper');
    const upper = join(work.path, 'my-change');
    await mkdir(mp2, { recursive: true });
    const mounted = await krgo(['mount', '-d', '-w', '--upper', upper, `${registry.host}/library/debian:bookworm`, mp2, '--cache-dir', cache()]);
    assert.equal(mounted.code, 0, mounted.stderr);
    await writeFile(join(mp2, 'etc/by-upper'), 'kept in my-change\n');
    assert.equal((await krgo(['umount', mp2])).code, 0);
    const committed = await krgo(['commit', '--upper', upper, '-m', 'by upper', '--cache-dir', cache()]);
    assert.equal(committed.code, 0, committed.stderr);
    const pushed = await krgo(['push', `${registry.host}/library/derived:upper`, '--upper', upper, '--cache-dir', cache()]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, /Layer indexes pushed with it/);
    const unpacked = await umociUnpack(`${registry.host}/library/derived:upper`, join(work.path, 'pushed-upper'));
    assert.equal(await readFile(join(unpacked, 'etc/by-upper'), 'utf8'), 'kept in my-change\n');
    const wrong = await krgo(['commit', '--upper', join(work.path, 'nothing-here'), '-m', 'x']);
    assert.equal(wrong.code, 4, 'not an upper directory: not found');
  });
});
