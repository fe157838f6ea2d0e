import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { appendFile, chmod, chown, link, lstat, mkdir, readFile, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush, umociUnpack } from '../support/oci-layout.js';
import { edgeCaseImage } from '../support/fixtures.js';
import { debianImageLayout, DEBIAN_TAG } from '../support/debian-image.js';
import { diffTrees, snapshotTree } from '../support/tree-snapshot.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { run, runOk } from '../support/run.js';
import { mountDaemon, unmount } from '../support/mounts.js';
import { startFaultProxy, type FaultProxy, type SeenRequest } from '../support/fault-proxy.js';
import { MONOLITHIC_MAX } from '../../src/registry/upload.js';

const CHUNK_MIN = 20 * 1024 * 1024;

/** Large blobs went up in PATCH chunks of the agreed size, in order, each but the last full. */
function assertChunkedUploads(proxy: FaultProxy, chunk: number): void {
  const patches = proxy.seen.filter((r) => r.method === 'PATCH');
  assert.ok(patches.length >= 3, `the 61 MB base layer goes in chunks (${patches.length} PATCH requests)`);
  const byUpload = new Map<string, SeenRequest[]>();
  for (const p of patches) {
    const id = /uploads\/([^/?]+)/.exec(p.path)?.[1] ?? '';
    byUpload.set(id, [...(byUpload.get(id) ?? []), p]);
  }
  for (const chunks of byUpload.values()) {
    let next = 0;
    chunks.forEach((p, i) => {
      assert.equal(p.contentRange, `${next}-${next + p.contentLength! - 1}`);
      if (i < chunks.length - 1) assert.equal(p.contentLength, chunk);
      next += p.contentLength!;
    });
  }
  // Small blobs (the config, the new layer) went in one PUT each.
  assert.ok(proxy.seen.some((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && (r.contentLength ?? 0) > 0));
}

interface Manifest {
  mediaType?: string;
  config: { digest: string };
  layers: { mediaType: string; digest: string; size: number }[];
}

async function manifestOf(host: string, repository: string, tag: string): Promise<Manifest> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  assert.equal(res.status, 200, `manifest ${repository}:${tag}`);
  return (await res.json()) as Manifest;
}

/** A -g rootfs holds krgo's /.git pointer to its repository, which is no part of the image. */
function withoutGitLink<T>(tree: Map<string, T>): Map<string, T> {
  tree.delete('/.git');
  return tree;
}

function git(rootfs: string, args: string[]) {
  const dir = join(rootfs, '..', `.${rootfs.split('/').pop()}.krgo`, 'git');
  return run('git', ['--git-dir', dir, ...args], { env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null' } });
}

/**
 * What a user does between pull -g and commit: every kind of change the issue lists, on paths
 * both images have, plus image-specific ones (rename, replaced directory, type change,
 * hardlink, xattr).
 */
async function changeTree(rootfs: string, specific: (rootfs: string) => Promise<void>): Promise<void> {
  await mkdir(join(rootfs, 'krgo'), { mode: 0o750 });
  await writeFile(join(rootfs, 'krgo/added.txt'), 'added by the commit test\n');
  await appendFile(join(rootfs, 'etc/passwd'), 'krgo:x:4242:4242::/nonexistent:/bin/false\n');
  await rm(join(rootfs, 'etc/hostname'));
  await chmod(join(rootfs, 'etc/shadow'), 0o400);
  await chown(join(rootfs, 'tmp'), 1234, 4321);
  await mkdir(join(rootfs, 'krgo/empty-dir'), { mode: 0o711 });
  await symlink('../etc/passwd', join(rootfs, 'krgo/passwd-link'));
  await specific(rootfs);
}

describe('krgo pull -g, commit, push: git layers round trip through a registry', () => {
  let registry: RunningRegistry;
  let other: RunningRegistry;
  let otherProxy: FaultProxy;
  let work: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    [registry, other] = await Promise.all([startRegistry(), startRegistry()]);
    // distribution 2.8 never asks for a minimum chunk size; the proxy does, as newer registries may.
    otherProxy = await startFaultProxy(other.host);
    otherProxy.setFaults((req) => (req.method === 'POST' ? { kind: 'add-headers', headers: { 'oci-chunk-min-length': String(CHUNK_MIN) } } : undefined));
    work = await tempDir('git-layers');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('edge', edgeCaseImage());
    await layout.addImage('edge-base', { layers: [edgeCaseImage().layers[0]!] });
    await layout.finish();
    await skopeoPush(join(work.path, 'layout'), 'edge', `${registry.host}/edge:oci`, 'oci');
    await skopeoPush(join(work.path, 'layout'), 'edge-base', `${registry.host}/edge-base:oci`, 'oci');
    await skopeoPush(await debianImageLayout(), DEBIAN_TAG, `${registry.host}/library/debian:bookworm`, 'v2s2');
  });

  after(async () => {
    await otherProxy?.stop();
    await Promise.all([registry?.stop(), other?.stop()]);
    await work?.remove();
  });

  const cases = [
    {
      name: 'edge-case image (OCI), pushed under a new name on the same registry: base layers mounted',
      image: 'edge:oci',
      target: () => `${registry.host}/edge-changed:v2`,
      readBack: () => `${registry.host}/edge-changed:v2`,
      expectOutcome: /Mounted from edge/,
      expectMembers: ['data/.wh.empty', 'data/empty-renamed', 'data/h1', 'data/h4', 'data/link2file/', 'late-opq/.wh.upper', 'late-opq/new', 'etc/.wh.hostname', 'krgo/empty-dir/', 'tmp/'],
      specific: async (rootfs: string) => {
        await rename(join(rootfs, 'data/empty'), join(rootfs, 'data/empty-renamed'));
        await rm(join(rootfs, 'late-opq'), { recursive: true });
        await mkdir(join(rootfs, 'late-opq'));
        await writeFile(join(rootfs, 'late-opq/new'), 'the directory was replaced');
        await rm(join(rootfs, 'data/link2file'));
        await mkdir(join(rootfs, 'data/link2file'));
        await link(join(rootfs, 'data/h1'), join(rootfs, 'data/h4'));
        await runOk('setfattr', ['-n', 'user.krgo.test', '-v', 'changed', join(rootfs, 'data/xattr-file')]);
        await utimes(join(rootfs, 'data/nanosecond-mtime'), 1_600_000_000, 1_600_000_000);
      },
    },
    {
      name: 'real Debian (Docker v2s2), pushed to another registry: base layers copied, chunked',
      image: 'library/debian:bookworm',
      target: () => `${otherProxy.host}/debian-changed:v2`,
      readBack: () => `${other.host}/debian-changed:v2`,
      expectOutcome: /Copied from/,
      expectMembers: ['etc/.wh.issue.net', 'etc/issue.renamed', 'usr/share/.wh.python3', 'usr/share/menu/', 'usr/share/menu/.wh..wh..opq', 'usr/bin/python3.11', 'krgo/passwd-link'],
      specific: async (rootfs: string) => {
        await rename(join(rootfs, 'etc/issue.net'), join(rootfs, 'etc/issue.renamed'));
        await rm(join(rootfs, 'usr/share/python3'), { recursive: true });
        await rm(join(rootfs, 'usr/share/menu'), { recursive: true });
        await mkdir(join(rootfs, 'usr/share/menu'));
        await chmod(join(rootfs, 'usr/bin/python3.11'), 0o700);
      },
    },
  ];

  const runs = cases.flatMap((c) => [
    { ...c, via: 'pull' as const },
    {
      ...c,
      via: 'materialize' as const,
      name: `${c.image}: the same after materialize -g of an image that was only mounted, branch for branch equal to pull -g`,
      target: () => `${registry.host}/${c.image.split(':')[0]}-materialized:v2`,
      readBack: () => `${registry.host}/${c.image.split(':')[0]}-materialized:v2`,
      expectOutcome: /layer 0 .*: (Mounted from|Layer already exists)/,
    },
  ]);

  for (const c of runs) {
    it(c.name, async () => {
      const pulledSlug = c.image.replace(/[/:]/g, '-');
      const slug = c.via === 'pull' ? pulledSlug : `${pulledSlug}-materialized`;
      const rootfs = join(work.path, slug);
      const source = `${registry.host}/${c.image}`;
      const cache = join(work.path, `cache-${slug}`);
      if (c.via === 'pull') {
        const pulled = await krgo(['pull', source, '-g', '-r', rootfs, '--cache-dir', cache, '-q']);
        assert.equal(pulled.code, 0, pulled.stderr);
      } else {
        const mountpoint = join(work.path, `mnt-${slug}`);
        await mountDaemon(source, mountpoint, cache);
        try {
          assert.match(await readFile(join(mountpoint, 'etc/passwd'), 'utf8'), /^root:/);
        } finally {
          await unmount(mountpoint, cache);
        }
        const made = await krgo(['materialize', source, '-g', '-r', rootfs, '--cache-dir', cache, '-q']);
        assert.equal(made.code, 0, made.stderr);
        // Each branch holds the very tree pull -g committed (same git tree ids), with the same records
        // (but for the times of directories no layer describes: the root, the fixture's /implicit).
        const pulledRootfs = join(work.path, pulledSlug);
        for (const branch of (await git(pulledRootfs, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/'])).stdout.trim().split('\n').slice(0, -1)) {
          if (!branch.startsWith('layer_')) continue;
          const ours = await git(rootfs, ['rev-parse', `${branch}^{tree}`]);
          assert.equal(ours.code, 0, `${branch} exists after materialize -g`);
          assert.equal(ours.stdout, (await git(pulledRootfs, ['rev-parse', `${branch}^{tree}`])).stdout, `${branch}: same tree as pull -g`);
        }
        const record = async (dir: string, n: number) => (await git(dir, ['cat-file', 'blob', `refs/krgo/state:records/${String(n).padStart(4, '0')}.jsonl`])).stdout.split('\n').filter((l) => !l.startsWith('{"path":"/",') && !l.startsWith('{"path":"/implicit')).join('\n');
        for (let n = 0; n < 3; n++) {
          const [ours, theirs] = [await record(rootfs, n), await record(pulledRootfs, n)];
          if (theirs) assert.equal(ours, theirs, `layer ${n}: same metadata record as pull -g`);
        }
      }

      // Branches: one per layer, named by index and digest, each made from the one before.
      const [repository, tag] = c.image.split(':') as [string, string];
      const original = await manifestOf(registry.host, repository, tag);
      const names = original.layers.map((l, i) => `layer_${i}_${l.digest.slice('sha256:'.length)}`);
      const branches = (await git(rootfs, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/'])).stdout.trim().split('\n').sort();
      assert.deepEqual(branches, [...names].sort());
      assert.equal((await git(rootfs, ['symbolic-ref', '--short', 'HEAD'])).stdout.trim(), names[names.length - 1]);
      for (let i = 1; i < names.length; i++) {
        assert.equal((await git(rootfs, ['merge-base', '--is-ancestor', names[i - 1]!, names[i]!])).code, 0, `${names[i]} is made from ${names[i - 1]}`);
      }
      assert.equal((await git(rootfs, ['status', '--porcelain'])).stdout, '', 'the work tree is clean after the pull');
      // The 2015 habit: git works from inside the rootfs, through a .git file naming the repository
      // beside it (no git data in the rootfs, and the file is never part of a layer).
      assert.equal(await readFile(join(rootfs, '.git'), 'utf8'), `gitdir: ${join(work.path, `.${slug}.krgo`, 'git')}\n`);
      const plainGit = await run('git', ['branch', '--format=%(refname:short)'], { cwd: rootfs, env: { PATH: process.env['PATH'] ?? '', HOME: work.path } });
      assert.equal(plainGit.code, 0, plainGit.stderr);
      assert.deepEqual(plainGit.stdout.trim().split('\n').sort(), names.slice().sort());
      // The manifest and config are in git, outside the work tree.
      const recordedManifest = JSON.parse((await git(rootfs, ['cat-file', 'blob', 'refs/krgo/state:manifest.json'])).stdout) as Manifest;
      assert.deepEqual(recordedManifest.layers.map((l) => l.digest), original.layers.map((l) => l.digest));

      // The work tree equals umoci's unpack of the same image.
      const oracle = await umociUnpack(source, join(work.path, `oracle-${slug}`));
      assert.deepEqual(diffTrees(await snapshotTree(oracle), withoutGitLink(await snapshotTree(rootfs))), []);

      const nothing = await krgo(['commit', '-r', rootfs, '-m', 'nothing']);
      assert.equal(nothing.code, 10, nothing.stderr);
      assert.match(nothing.stderr, /nothing to commit/);

      await changeTree(rootfs, c.specific);
      const expected = withoutGitLink(await snapshotTree(rootfs));
      const committed = await krgo(['commit', '-r', rootfs, '-m', 'krgo test changes']);
      assert.equal(committed.code, 0, committed.stderr);
      const digest = /Layer digest: (sha256:[a-f0-9]{64})/.exec(committed.stdout)?.[1];
      assert.ok(digest, committed.stdout);
      const newBranch = `layer_${names.length}_${digest.slice(7)}`;
      assert.match(committed.stdout, new RegExp(`Changes committed in ${newBranch}`));
      assert.equal((await git(rootfs, ['symbolic-ref', '--short', 'HEAD'])).stdout.trim(), newBranch);
      assert.equal((await git(rootfs, ['status', '--porcelain'])).stdout, '', 'the work tree is clean after the commit');
      const members = (await runOk('tar', ['-tzf', join(work.path, `.${slug}.krgo`, 'blobs', 'sha256', digest.slice(7))])).stdout.split('\n');
      for (const member of c.expectMembers) assert.ok(members.includes(member), `${member} in the new layer: ${members.join(' ')}`);
      assert.ok(!members.some((m) => m.startsWith('usr/lib/') || m.startsWith('bin/busybox')), 'unchanged paths stay out of the layer');

      const pushed = await krgo(['push', c.target(), '-r', rootfs, '--cache-dir', cache]);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.match(pushed.stdout, c.expectOutcome);
      assert.match(pushed.stdout, new RegExp(`layer ${names.length} .*: Pushed`));
      // The pull left the base indexes in the cache; the new layer's is built from its blob: all go along.
      assert.match(pushed.stdout, /Layer indexes pushed with it \(sha256:[a-f0-9]{64}\)/);

      // The base layers keep their digests; the manifest keeps the source's format.
      const [targetHost, targetRest] = [c.readBack().split('/')[0]!, c.readBack().split('/').slice(1).join('/')];
      const [targetRepo, targetTag] = targetRest.split(':') as [string, string];
      const result = await manifestOf(targetHost, targetRepo, targetTag);
      assert.equal(result.mediaType, original.mediaType);
      assert.deepEqual(result.layers.slice(0, -1), original.layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })));
      assert.equal(result.layers.at(-1)!.digest, digest);
      if (c.target().startsWith(otherProxy.host)) assertChunkedUploads(otherProxy, Math.max(CHUNK_MIN, MONOLITHIC_MAX));

      // skopeo + umoci read back exactly the changed tree, mtimes (directories too) to the nanosecond.
      const readBack = await umociUnpack(c.readBack(), join(work.path, `readback-${slug}`));
      assert.deepEqual(diffTrees(expected, await snapshotTree(readBack)), []);
      // Directories no layer describes (the fixture's /implicit parents) carry their extraction
      // time. So does, in umoci's tree only, /data/wh-dir: umoci removes its lower children for a
      // same-layer whiteout but restores the times of the whiteout's own parent only (krgo keeps
      // the layer's time there, as for any directory a layer changed without describing).
      const undescribed = (d: string) => d.startsWith('/implicit') || d.startsWith('/data/wh-dir:');
      assert.deepEqual(diffTrees(withoutGitLink(await snapshotTree(rootfs, { dirMtimes: true })), await snapshotTree(readBack, { dirMtimes: true })).filter((d) => !undescribed(d) && !d.startsWith('/:')), []);
      assert.equal((await lstat(join(readBack, 'krgo/empty-dir'))).isDirectory(), true);
      assert.equal((await stat(join(readBack, 'tmp'))).uid, 1234);
      assert.equal(await readFile(join(readBack, 'krgo/added.txt'), 'utf8'), 'added by the commit test\n');
      await assert.rejects(lstat(join(readBack, 'etc/hostname')));
    });
  }

  it('krgo checkout restores a layer branch exactly, devices, hardlinks, owners and times included', async () => {
    const rootfs = join(work.path, 'edge-checkout');
    const cache = join(work.path, 'cache-checkout');
    const pulled = await krgo(['pull', `${registry.host}/edge:oci`, '-g', '-r', rootfs, '--cache-dir', cache, '-q']);
    assert.equal(pulled.code, 0, pulled.stderr);
    const top = withoutGitLink(await snapshotTree(rootfs, { dirMtimes: true }));

    // Layer 0 alone, as umoci unpacks an image of just that layer.
    const res = await krgo(['checkout', '0', '-r', rootfs]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^layer_0_[a-f0-9]{64} checked out \(\d+ paths restored/);
    const base = await umociUnpack(`${registry.host}/edge-base:oci`, join(work.path, 'oracle-edge-base'));
    const undescribed = (d: string) => d.startsWith('/implicit');
    assert.deepEqual(diffTrees(await snapshotTree(base, { dirMtimes: true }), withoutGitLink(await snapshotTree(rootfs, { dirMtimes: true }))).filter((d) => !undescribed(d)), []);

    // Changes no branch holds stop a checkout.
    await writeFile(join(rootfs, 'stray'), 'x');
    const refused = await krgo(['checkout', '2', '-r', rootfs]);
    assert.equal(refused.code, 9, refused.stderr);
    assert.match(refused.stderr, /changes no branch holds/);
    await rm(join(rootfs, 'stray'));

    // Back to the top layer: the tree pull -g wrote, to the nanosecond.
    const back = await krgo(['checkout', '2', '-r', rootfs]);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(diffTrees(top, withoutGitLink(await snapshotTree(rootfs, { dirMtimes: true }))), []);
  });

  it('refuses to commit when an older layer branch was changed, or HEAD is not on the top layer', async () => {
    const rootfs = join(work.path, 'edge-oci');
    const branches = (await git(rootfs, ['for-each-ref', '--format=%(refname:short)', '--sort=refname', 'refs/heads/'])).stdout.trim().split('\n');
    const top = (await git(rootfs, ['symbolic-ref', '--short', 'HEAD'])).stdout.trim();
    const older = branches.find((b) => b.startsWith('layer_0_'))!;
    await git(rootfs, ['checkout', '-q', older]);
    let res = await krgo(['commit', '-r', rootfs, '-m', 'on an old branch']);
    assert.equal(res.code, 9, res.stderr);
    assert.match(res.stderr, /not on the top layer/);
    await git(rootfs, ['checkout', '-q', top]);
    await runOk('git', ['--git-dir', join(work.path, '.edge-oci.krgo', 'git'), 'update-ref', `refs/heads/${older}`, `refs/heads/${top}`]);
    await writeFile(join(rootfs, 'krgo/another'), 'x');
    res = await krgo(['commit', '-r', rootfs, '-m', 'after a branch moved']);
    assert.equal(res.code, 9, res.stderr);
    assert.match(res.stderr, new RegExp(`branch ${older} moved`));
    // The message says how to undo it; done, commit works again.
    const undo = /to put it back, run: (git -C \S+ branch -f \S+ [0-9a-f]+)/.exec(res.stderr);
    assert.ok(undo, res.stderr);
    await runOk('sh', ['-c', undo[1]!]);
    // A plain git commit on the top layer: krgo says how to make it a layer instead.
    await runOk('git', ['-C', rootfs, '-c', 'user.name=u', '-c', 'user.email=u@x', 'add', 'krgo/another']);
    await runOk('git', ['-C', rootfs, '-c', 'user.name=u', '-c', 'user.email=u@x', 'commit', '-q', '-m', 'by hand']);
    res = await krgo(['commit', '-r', rootfs, '-m', 'after a git commit']);
    assert.equal(res.code, 9, res.stderr);
    const soft = /make your git commits a layer instead, run: (git -C \S+ reset --soft [0-9a-f]+) && krgo commit/.exec(res.stderr);
    assert.ok(soft, res.stderr);
    await runOk('sh', ['-c', soft[1]!]);
    res = await krgo(['commit', '-r', rootfs, '-m', 'the hand-made change as a layer']);
    assert.equal(res.code, 0, res.stderr);
  });
});
