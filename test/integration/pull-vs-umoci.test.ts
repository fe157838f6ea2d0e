import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush, umociUnpack } from '../support/oci-layout.js';
import { busyboxImage, edgeCaseImage, nonUtf8Layers } from '../support/fixtures.js';
import { diffTrees, snapshotTree, type NodeRecord } from '../support/tree-snapshot.js';
import { krgo, KRGO_COMMAND } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { run } from '../support/run.js';

/** What the edge-case layers must produce, stated independently of the oracle. */
function assertEdgeCaseFacts(tree: Map<string, NodeRecord>): void {
  const at = (path: string): NodeRecord => {
    const record = tree.get(path);
    assert.ok(record, `${path} should exist`);
    return record;
  };
  for (const gone of ['/data/todelete', '/data/tododir', '/data/added-later', '/bin/ls', '/opaque/lower-a', '/opaque/lower-sub', '/late-opq/lower', '/data/dir2file/inner']) {
    assert.equal(tree.has(gone), false, `${gone} should be gone`);
  }
  assert.deepEqual([...tree.keys()].filter((p) => p.startsWith('/opaque/')), ['/opaque/upper-c']);
  assert.equal(at('/opaque').mode, '711');
  assert.deepEqual([...tree.keys()].filter((p) => p.startsWith('/late-opq/')), ['/late-opq/upper']);
  assert.equal(at('/data/file2dir').type, 'dir');
  assert.equal(at('/data/dir2file').type, 'file');
  assert.equal(at('/data/link2file').type, 'file');
  assert.equal(at('/data/file2link').link, '../etc/passwd');
  assert.equal(at('/data/h2').hardlinks, '/data/h3');
  assert.equal(at('/data/h1').hardlinks, undefined);
  assert.equal(at('/data/h1').size, 'hardlinked content v2: h2 and h3 keep v1'.length);
  assert.equal(at('/usr/bin/setuid-tool').mode, '4755');
  assert.equal(at('/usr/bin/setgid-tool').mode, '2711');
  assert.equal(at('/tmp').mode, '1777');
  assert.equal(at('/etc').mode, '750');
  assert.equal(at('/etc/shadow').mode, '600');
  assert.deepEqual([at('/home/user/bigid').uid, at('/home/user/bigid').gid], [3_000_000, 3_000_001]);
  assert.equal(at('/dev/null').rdev, '1:3');
  assert.equal(at('/dev/loop0').type, 'block');
  assert.equal(at('/data/fifo').type, 'fifo');
  assert.match(at('/data/xattr-file').xattrs ?? '', /user\.krgo\.binary=0x000102ff;user\.krgo\.test=0x68656c6c6f;/);
  assert.equal(at('/data/fraction-mtime').mtime, '1700000000500000000');
  assert.equal(at('/data/nanosecond-mtime').mtime, '1700000000123456789');
  assert.equal(at('/usr/lib/through-symlink').type, 'file');
  assert.equal(at('/lib').link, 'usr/lib');
  assert.equal(at('/implicit/nested/file').type, 'file');
  assert.equal(at('/data/third').uid, 33);
  assert.equal(at('/data/same-layer').type, 'file', 'a whiteout does not remove what its own layer added');
  assert.deepEqual([...tree.keys()].filter((p) => p.startsWith('/data/wh-dir/')), ['/data/wh-dir/upper']);
  assert.equal(at('/data/link-mode-0644').mode, '777');
  assert.equal(at('/data/pair-a').hardlinks, undefined, 'a later layer split the pair');
  assert.equal(at('/data/pair-b').hardlinks, undefined);
  assert.ok([...tree.keys()].some((p) => p.endsWith(`${'f'.repeat(120)}.txt`)), 'the PAX long name is written');
}

describe('krgo pull equals umoci unpack', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('pull');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('edge', edgeCaseImage());
    await layout.addImage('edge-mixed', edgeCaseImage(['gzip', 'none', 'zstd']));
    await layout.addImage('busybox', busyboxImage());
    await layout.addImage('names', { layers: nonUtf8Layers().map((tar) => ({ tar })) });
    await layout.addIndex('multi', [
      { ...busyboxImage(), architecture: 'amd64' },
      { layers: [{ tar: edgeCaseImage().layers[0]!.tar }], architecture: 'arm64', variant: 'v8' },
    ]);
    await layout.finish();
    const dir = join(work.path, 'layout');
    await skopeoPush(dir, 'edge', `${registry.host}/edge/docker:v1`, 'v2s2');
    await skopeoPush(dir, 'edge', `${registry.host}/edge/oci:v1`, 'oci');
    await skopeoPush(dir, 'edge-mixed', `${registry.host}/edge/mixed:v1`, 'oci');
    await skopeoPush(dir, 'busybox', `${registry.host}/busybox:latest`, 'v2s2');
    await skopeoPush(dir, 'names', `${registry.host}/names:v1`, 'oci');
    await skopeoPush(dir, 'multi', `${registry.host}/multi:latest`, 'index');
  });

  after(async () => {
    await registry?.stop();
    await work?.remove();
  });

  // umoci 0.4.7 cannot read zstd layers: the mixed image is checked against umoci's unpack of the
  // gzip image, whose uncompressed layers (diff_ids) are the same bytes.
  const cases: [string, string, string | undefined, string?][] = [
    ['Docker v2s2, gzip layers', 'edge/docker:v1', undefined],
    ['OCI manifest, gzip layers', 'edge/oci:v1', undefined],
    ['OCI manifest, gzip + uncompressed + zstd layers', 'edge/mixed:v1', undefined, 'edge/oci:v1'],
    ['multi-platform index, arm64/v8 chosen with --platform', 'multi:latest', 'linux/arm64/v8'],
    ['file names that are not UTF-8, kept as bytes', 'names:v1', undefined],
  ];
  for (const [name, image, platform, oracleImage] of cases) {
    it(name, async () => {
      const slug = image.replace(/[/:]/g, '_');
      const rootfs = join(work.path, `krgo-${slug}`);
      const res = await krgo(['pull', `${registry.host}/${image}`, '-r', rootfs, '--cache-dir', join(work.path, 'cache'), ...(platform ? ['--platform', platform] : [])]);
      assert.equal(res.code, 0, res.stderr);
      const oracleDir = join(work.path, `oracle-${slug}`);
      const oracle = await umociUnpack(`${registry.host}/${oracleImage ?? image}`, oracleDir, platform);
      const ours = await snapshotTree(rootfs);
      const diffs = diffTrees(await snapshotTree(oracle), ours);
      assert.deepEqual(diffs, []);
      if (image.startsWith('edge/')) assertEdgeCaseFacts(ours);
      if (image.startsWith('names')) {
        assert.deepEqual([...ours.keys()].filter((p) => p.startsWith('/names/caf')).sort(), ['/names/caf\u00e9', '/names/caf\udce9', '/names/caf\ufffd'], 'three names, none lost or merged; the whited-out one gone');
        assert.equal(ours.get('/names/link-to-latin1')?.link, 'caf\udce9', 'a link target keeps its bytes');
        assert.equal(ours.get('/names/hard-\udce9')?.hardlinks, '/names/caf\udce9');
        assert.ok(ours.has('/names/dir-\udcff/added-\udcc0'));
        // pull -g too: git keeps the bytes, the metadata record walks them exactly.
        const gitRootfs = join(work.path, 'names-git');
        const withGit = await krgo(['pull', '-q', '-g', `${registry.host}/${image}`, '-r', gitRootfs, '--cache-dir', join(work.path, 'cache')]);
        assert.equal(withGit.code, 0, withGit.stderr);
        const gitTree = await snapshotTree(gitRootfs);
        assert.match(gitTree.get('/.git')?.type ?? '', /^file$/, 'the .git pointer to the repository beside the rootfs');
        gitTree.delete('/.git');
        assert.deepEqual(diffTrees(ours, gitTree), []);
        const status = await run('git', ['--git-dir', join(work.path, '.names-git.krgo', 'git'), '--work-tree', gitRootfs, 'status', '--porcelain']);
        assert.equal(status.stdout, '', 'git sees the tree it committed');
      }
    });
  }

  it('leaves the layer indexes in the cache, so a later mount or index needs no pass', async () => {
    const res = await krgo(['index', `${registry.host}/edge/mixed:v1`, '--cache-dir', join(work.path, 'cache')]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal((res.stdout.match(/: cache,/g) ?? []).length, 3, res.stdout);
    assert.match(res.stdout, /gzip/);
    assert.match(res.stdout, /zstd/);
  });

  it('writes metadata beside the rootfs, never in it, and runs a real shell in the result', async () => {
    const rootfs = join(work.path, 'bb');
    const res = await krgo(['pull', `${registry.host}/busybox`, '-r', rootfs, '--cache-dir', join(work.path, 'cache'), '-q']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, '');
    const meta = JSON.parse(await readFile(join(work.path, '.bb.krgo', 'image.json'), 'utf8')) as { manifestDigest: string };
    assert.match(meta.manifestDigest, /^sha256:[a-f0-9]{64}$/);
    await assert.rejects(stat(join(rootfs, '.krgo')));
    const shell = await run('chroot', [rootfs, '/bin/sh', '-c', 'cat /etc/motd; id -u']);
    assert.equal(shell.code, 0, shell.stderr);
    assert.equal(shell.stdout, 'hello from krgo\n0\n');
    // krgo run on a pulled rootfs: the image's own command (Cmd /bin/sh) reads the script from stdin.
    const ran = await run(KRGO_COMMAND, ['run', rootfs], { input: 'cat /etc/motd; echo "$PATH"\n' });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, 'hello from krgo\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
    assert.match(ran.stderr, /the image has no \/dev directory: it runs without \/dev/);
  });

  it('the default platform of a multi-platform image is this machine (linux/amd64)', async () => {
    const rootfs = join(work.path, 'multi-default');
    const res = await krgo(['pull', `${registry.host}/multi`, '-r', rootfs, '--cache-dir', join(work.path, 'cache'), '-q']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(await readFile(join(rootfs, 'etc/motd'), 'utf8'), 'hello from krgo\n');
  });

  it('refuses --platform that a single-platform image is not for (docker does too)', async () => {
    const res = await krgo(['pull', `${registry.host}/busybox`, '-r', join(work.path, 'never-arm'), '--platform', 'linux/arm64', '--cache-dir', join(work.path, 'cache')]);
    assert.equal(res.code, 4, res.stderr);
    assert.match(res.stderr, /is an image for linux\/amd64 only, not linux\/arm64/);
    await assert.rejects(stat(join(work.path, 'never-arm')));
    const matching = await krgo(['pull', '-q', `${registry.host}/busybox`, '-r', join(work.path, 'amd64-asked'), '--platform', 'linux/amd64', '--cache-dir', join(work.path, 'cache')]);
    assert.equal(matching.code, 0, matching.stderr);
  });

  it('refuses a platform the index does not offer, naming what it offers', async () => {
    const res = await krgo(['pull', `${registry.host}/multi`, '-r', join(work.path, 'never'), '--platform', 'linux/s390x', '--cache-dir', join(work.path, 'cache')]);
    assert.equal(res.code, 4);
    assert.match(res.stderr, /no image for linux\/s390x.*linux\/amd64.*linux\/arm64\/v8/);
    await assert.rejects(stat(join(work.path, 'never')));
  });

  it('refuses to pull into a directory that is not empty', async () => {
    const rootfs = join(work.path, 'krgo-edge_docker_v1');
    const res = await krgo(['pull', `${registry.host}/edge/docker:v1`, '-r', rootfs, '--cache-dir', join(work.path, 'cache')]);
    assert.equal(res.code, 8);
    assert.match(res.stderr, /already exists and is not an empty directory/);
  });
});
