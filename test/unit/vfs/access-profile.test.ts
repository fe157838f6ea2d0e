import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { AccessRecorder, encodeProfile, parseProfile, planProfile, type AccessProfile } from '../../../src/vfs/access-profile.js';
import { MergedTree } from '../../../src/vfs/merged-tree.js';
import { ImageReader, prefetchProfileInLayers } from '../../../src/vfs/image-reader.js';
import { LayerReader, SpanCache } from '../../../src/vfs/layer-reader.js';
import { buildLayerIndex } from '../../../src/index/layer-index.js';
import { buildProfileWindows } from '../../../src/index/build-profile-windows.js';
import { buildTar } from '../../../src/tar/tar-writer.js';
import { sha256Of, type Digest } from '../../../src/digest.js';
import type { RangeSource } from '../../../src/blob/range-source.js';
import { isKrgoError } from '../../../src/errors.js';

const KiB = 1024;

async function treeOf(files: Parameters<typeof buildTar>[0]) {
  const tree = new MergedTree();
  await tree.addLayer(Readable.from([buildTar(files)]));
  return tree;
}

describe('access profiles: record, parse, plan, replay', () => {
  it('records first-read order per file and joins reads into page-grained ranges', async () => {
    const tree = await treeOf([
      { path: 'bin/', type: 'dir' },
      { path: 'bin/app', type: 'file', content: Buffer.alloc(1000 * KiB, 1) },
      { path: 'lib.so', type: 'file', content: Buffer.alloc(10 * KiB, 2) },
    ]);
    const app = tree.lookup('/bin/app')!;
    const lib = tree.lookup('/lib.so')!;
    const recorder = new AccessRecorder();
    recorder.read('/bin/app', app, 0, 4096);
    recorder.read('/lib.so', lib, 0, 10 * KiB);
    recorder.read('/bin/app', app, 4096, 128 * KiB); // joins the first read
    recorder.read('/bin/app', app, 900 * KiB, 1);
    recorder.read('/bin/app', app, 999 * KiB, 100 * KiB); // past the end: clipped to the size
    const profile = recorder.profile();
    assert.deepEqual(profile, {
      version: 1,
      files: [
        { path: '/bin/app', ranges: [[0, 132 * KiB], [900 * KiB, 4 * KiB], [996 * KiB, 4 * KiB]] },
        { path: '/lib.so', ranges: [[0, 10 * KiB]] },
      ],
    });
    assert.deepEqual(parseProfile(encodeProfile(profile).toString()), profile, 'round trip');
  });

  it('scattered reads of a big file are joined until they fit what a profile may hold', async () => {
    const tree = await treeOf([{ path: 'db', type: 'file', content: Buffer.alloc(0) }]);
    const db = { ...tree.lookup('/db')!, size: 10_000 * 256 * KiB };
    const recorder = new AccessRecorder();
    for (let i = 0; i < 10_000; i++) recorder.read('/db', db, i * 256 * KiB, 100);
    const [file] = recorder.profile().files;
    assert.ok(file!.ranges!.length <= 4096 && file!.ranges!.length >= 1000, `${file!.ranges!.length} ranges`);
    assert.deepEqual(file!.ranges![0]![0], 0);
    assert.ok(parseProfile(encodeProfile(recorder.profile()).toString()), 'a recorded profile is always accepted');
  });

  it('parses a plain list of paths, and refuses what is not a profile', () => {
    assert.deepEqual(parseProfile('# what the app reads\n/usr/bin/app\n\n  /etc/app.conf  \n'), {
      version: 1,
      files: [{ path: '/usr/bin/app' }, { path: '/etc/app.conf' }],
    });
    const refused = [
      'usr/bin/app\n',
      '{"version":2,"files":[]}',
      '{"version":1,"files":{}}',
      '{"version":1,"files":[{"path":"rel"}]}',
      '{"version":1,"files":[{"path":"/a","ranges":[[0]]}]}',
      '{"version":1,"files":[{"path":"/a","ranges":[[-1,5]]}]}',
      '{"version":1,"files":[{"path":"/a","ranges":[[0,1.5]]}]}',
      '{"version":1,',
    ];
    for (const text of refused) assert.throws(() => parseProfile(text), (err) => isKrgoError(err, 'USAGE'), text);
  });

  it('plans reads through symlinks inside the tree; what is not a file here is counted missing', async () => {
    const tree = await treeOf([
      { path: 'usr/', type: 'dir' },
      { path: 'usr/bin/', type: 'dir' },
      { path: 'usr/bin/python3.11', type: 'file', content: Buffer.alloc(300 * KiB, 3) },
      { path: 'usr/bin/python3', type: 'symlink', linkname: 'python3.11' },
      { path: 'escape', type: 'symlink', linkname: '../../../../etc/passwd' },
    ]);
    const python = tree.lookup('/usr/bin/python3.11')!;
    const plan = planProfile(tree, {
      version: 1,
      files: [
        { path: '/usr/bin/python3', ranges: [[0, 64 * KiB], [256 * KiB, 128 * KiB], [400 * KiB, 10]] },
        { path: '/usr/bin' },
        { path: '/nowhere' },
        { path: '/escape' },
        { path: '/usr/bin/python3.11' },
      ],
    });
    assert.equal(plan.missing, 3);
    assert.deepEqual(plan.reads.map((r) => [r.inode, r.offset, r.length]), [
      [python, 0, 64 * KiB],
      [python, 256 * KiB, 44 * KiB],
      [python, 0, 300 * KiB],
    ]);
  });

  it('replays a plan as few requests as adjacency allows, earliest-wanted first, then reads fetch nothing', async () => {
    // Incompressible, so deflate blocks (and seek points) come every few KiB.
    const big = (n: number) => randomBytes(n);
    const files = [
      { path: 'a', type: 'file' as const, content: big(600 * KiB) },
      { path: 'gap', type: 'file' as const, content: big(1200 * KiB) },
      { path: 'b', type: 'file' as const, content: big(300 * KiB) },
    ];
    const { calls, layer, tree, reader } = await servedLayer(files, { grid: 256 * KiB }, 5);
    const runs = layer.spanRuns([
      { offset: tree.lookup('/b')!.content!.offset, length: 300 * KiB, order: 0 },
      { offset: tree.lookup('/a')!.content!.offset, length: 600 * KiB, order: 1 },
    ]);
    assert.ok(runs.every((r) => r.last - r.first < 4), 'no run longer than 4 spans');
    assert.ok(runs[runs.length - 1]!.order === 0, 'b (asked first) is at the end of the layer but keeps order 0');

    const plan = planProfile(tree, { version: 1, files: [{ path: '/b' }, { path: '/a' }] });
    await reader.prefetchReads(plan.reads, 1);
    const fetched = calls.length;
    assert.ok(fetched >= 2 && fetched <= 4, `${fetched} requests`);
    assert.ok(calls[0]![0] > calls[calls.length - 1]![0], 'with one request at a time, b (wanted first) was fetched first');
    for (const name of ['/a', '/b']) {
      const inode = tree.lookup(name)!;
      const got = await reader.read(inode, 0, inode.size);
      assert.ok(got.equals(files.find((f) => `/${f.path}` === name)!.content));
    }
    assert.equal(calls.length, fetched, 'the reads were served by what the replay fetched');
  });
});

describe('spanRuns weighs a gap against a fresh start', () => {
  it('fetches a gap that compresses to less than a window with its neighbours, and skips one that does not', async () => {
    const files = [
      { path: 'a', type: 'file' as const, content: randomBytes(200 * KiB) },
      // 100 KiB that stay 100 KiB compressed: more than a fresh start (a 32 KiB window) costs.
      { path: 'random-gap', type: 'file' as const, content: randomBytes(100 * KiB) },
      { path: 'b', type: 'file' as const, content: randomBytes(200 * KiB) },
      // 400 KiB of zeros: a few hundred bytes compressed, cheaper than a window.
      { path: 'zeros-gap', type: 'file' as const, content: Buffer.alloc(400 * KiB) },
      { path: 'c', type: 'file' as const, content: randomBytes(200 * KiB) },
    ];
    const blob = gzipSync(buildTar(files));
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, { grid: 16 * KiB, windowSpacing: 16 * KiB });
    const source: RangeSource = { read: async () => assert.fail('nothing is fetched while planning') };
    const layer = new LayerReader(index, source, new SpanCache());
    const tree = new MergedTree();
    await tree.addLayerEntries(index.entries);
    const at = (name: string) => ({ offset: tree.lookup(name)!.content!.offset, length: 200 * KiB });
    const runs = layer.spanRuns([{ ...at('/a'), order: 0 }, { ...at('/b'), order: 1 }, { ...at('/c'), order: 2 }]);
    assert.equal(runs.length, 2, JSON.stringify(runs));
    assert.deepEqual(runs.map((r) => r.order), [0, 1], 'a alone, b and c in one run');
  });
});

describe('a replay that waits for a request slot', () => {
  it('starts a queued run when a read needs one of its spans, instead of fetching around it', async () => {
    const files = [
      { path: 'a', type: 'file' as const, content: randomBytes(300 * KiB) },
      { path: 'gap', type: 'file' as const, content: randomBytes(600 * KiB) },
      { path: 'b', type: 'file' as const, content: randomBytes(300 * KiB) },
    ];
    const { index, calls, layer, tree, reader } = await servedLayer(files, { grid: 16 * KiB, windowSpacing: 16 * KiB }, 30);
    const plan = planProfile(tree, { version: 1, files: [{ path: '/a' }, { path: '/b' }] });
    // One request at a time: b's run waits behind a's.
    const replay = reader.prefetchReads(plan.reads, 1);
    const b = tree.lookup('/b')!;
    const got = await reader.read(b, 150 * KiB, 4 * KiB);
    assert.ok(got.equals(files[2]!.content.subarray(150 * KiB, 154 * KiB)));
    await replay;
    assert.equal(calls.length, 2, `one request per run, none around them: ${JSON.stringify(calls)}`);
    const bStart = layer.spanRuns([{ offset: b.content!.offset, length: b.size, order: 0 }])[0]!;
    assert.ok(calls[1]![0] <= gzipCellsStart(index, bStart.first), 'b was fetched from its run start');
  });
});

describe('files found ahead, fetched together', () => {
  it('neighbouring files share requests instead of one each', async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ path: `mod${String(i).padStart(2, '0')}.py`, type: 'file' as const, content: randomBytes(20 * KiB) }));
    const { calls, tree, reader } = await servedLayer(files, { grid: 16 * KiB, windowSpacing: 16 * KiB }, 5);
    await reader.prefetchFiles(files.map((f) => tree.lookup(`/${f.path}`)!));
    assert.ok(calls.length <= 2, `${calls.length} requests for ${files.length} files`);
    for (const f of files) assert.ok((await reader.read(tree.lookup(`/${f.path}`)!, 0, f.content.length)).equals(f.content));
    assert.ok(calls.length <= 2, 'and the reads found them fetched');
  });
});

describe('a profile fetched before the tree is built', () => {
  it('places its files by the layer index alone: the replay through the tree then fetches nothing more, and reads are true', async () => {
    const files = [
      { path: 'bin/app', type: 'file' as const, content: randomBytes(300 * KiB) },
      { path: 'gap', type: 'file' as const, content: randomBytes(900 * KiB) },
      { path: 'lib/libx.so', type: 'file' as const, content: randomBytes(200 * KiB) },
      { path: 'unread', type: 'file' as const, content: randomBytes(400 * KiB) },
    ];
    const { index, calls, layer, tree, reader } = await servedLayer(files, { grid: 16 * KiB, windowSpacing: 64 * KiB }, 5);
    const profile: AccessProfile = { version: 1, files: [{ path: '/lib/libx.so' }, { path: '/bin/app', ranges: [[0, 64 * KiB]] }, { path: '/nowhere' }] };
    await prefetchProfileInLayers([layer], [index], profile);
    const early = calls.length;
    assert.ok(early >= 1, 'the profile was fetched');
    const unread = tree.lookup('/unread')!;
    // The cell holding its first bytes (and libx.so's last) ends where the next point's byte does.
    const afterUnreadStart = index.checkpoints.find((p) => p.uncompressedOffset > unread.content!.offset)!;
    assert.ok(calls.every(([, end]) => end <= afterUnreadStart.compressedOffset + 1), `nothing more of the file no one reads: ${JSON.stringify(calls)}`);
    await reader.prefetchReads(planProfile(tree, profile).reads);
    assert.equal(calls.length, early, 'the replay through the tree found everything in flight or cached');
    const lib = tree.lookup('/lib/libx.so')!;
    assert.ok((await reader.read(lib, 0, lib.size, false)).equals(files[2]!.content));
    assert.ok((await reader.read(tree.lookup('/bin/app')!, 0, 64 * KiB, false)).equals(files[0]!.content.subarray(0, 64 * KiB)));
    assert.equal(calls.length, early, 'and the reads were served by it');
  });
});

/** A gzip layer of `files` served by range with a delay per request (noted in `calls`), its tree and readers. */
async function servedLayer(files: { path: string; type: 'file'; content: Buffer }[], density: { grid: number; windowSpacing?: number }, delayMs: number) {
  const blob = gzipSync(buildTar(files));
  const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, density);
  const calls: [number, number][] = [];
  const source: RangeSource = {
    read: async (_digest: Digest, start: number, end: number) => {
      calls.push([start, end]);
      await new Promise((r) => setTimeout(r, delayMs));
      return blob.subarray(start, end);
    },
  };
  const layer = new LayerReader(index, source, new SpanCache());
  const tree = new MergedTree();
  await tree.addLayerEntries(index.entries);
  return { index, calls, layer, tree, reader: new ImageReader(tree, [layer]) };
}

function gzipCellsStart(index: Awaited<ReturnType<typeof buildLayerIndex>>, cell: number): number {
  const p = index.checkpoints[cell]!;
  return p.compressedOffset - (p.bits ? 1 : 0);
}

describe("an access profile's seek windows", () => {
  it('start its replay at the first cell it reads instead of the keyed point before it, and read true', async () => {
    const files = [
      // Incompressible: 400 KiB of lead-in cost 400 KiB when a fetch has to inflate through them.
      { path: 'before', type: 'file' as const, content: randomBytes(400 * KiB) },
      { path: 'wanted', type: 'file' as const, content: randomBytes(100 * KiB) },
      { path: 'after', type: 'file' as const, content: randomBytes(100 * KiB) },
    ];
    const blob = gzipSync(buildTar(files));
    // Keyed points 1 MiB apart: the index itself keeps no window anywhere near /wanted.
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, { grid: 16 * KiB, windowSpacing: 1024 * KiB });
    const blobs = new Map<string, Buffer>([[index.layerDigest, blob]]);
    const calls: { digest: string; bytes: number }[] = [];
    const source: RangeSource = {
      read: async (digest: Digest, start: number, end: number) => {
        calls.push({ digest, bytes: end - start });
        return blobs.get(digest)!.subarray(start, end);
      },
    };
    const tree = new MergedTree();
    await tree.addLayerEntries(index.entries);
    const profile = { version: 1 as const, files: [{ path: '/wanted' }] };
    const fetched = () => calls.reduce((sum, c) => sum + c.bytes, 0);

    await new ImageReader(tree, [new LayerReader(index, source, new SpanCache())]).prefetchReads(planProfile(tree, profile).reads);
    const withoutWindows = fetched();
    assert.ok(withoutWindows > 400 * KiB, `${withoutWindows} bytes: inflated from the start of the layer`);

    const built = (await buildProfileWindows({ tree, reader: new ImageReader(tree, [new LayerReader(index, source, new SpanCache())]) }, profile))!;
    assert.equal(built.windows.points.length, 1, 'one stretch of cells, one window');
    assert.equal(built.windows.points[0]!.layer, index.layerDigest);
    blobs.set(built.windows.digest, built.blob);
    // As a mount gets it: through the profile's JSON.
    const stored = parseProfile(encodeProfile({ ...profile, seekWindows: built.windows }).toString());
    calls.length = 0;
    const layer = new LayerReader(index, source, new SpanCache());
    layer.addProfileWindows(stored.seekWindows!);
    const image = new ImageReader(tree, [layer]);
    await image.prefetchReads(planProfile(tree, stored).reads);
    assert.deepEqual(calls.map((c) => c.digest).sort(), [built.windows.digest, index.layerDigest].sort(), 'one window, one range of the layer');
    // The file, its window, and at most a deflate block (64 KiB stored) on either side of it.
    assert.ok(fetched() < 100 * KiB + 32 * KiB + 2 * 64 * KiB && fetched() < withoutWindows / 2, `${fetched()} bytes, against ${withoutWindows} without the window`);
    const wanted = tree.lookup('/wanted')!;
    assert.ok((await image.read(wanted, 0, wanted.size)).equals(files[1]!.content));
    assert.equal(calls.length, 2, 'the read was served by the replay');
  });

  it('come from their whole blob when it is on its way (a mount fetches it while the tree is built), by range if that fails', async () => {
    const files = [
      { path: 'before', type: 'file' as const, content: randomBytes(400 * KiB) },
      { path: 'wanted', type: 'file' as const, content: randomBytes(100 * KiB) },
    ];
    const blob = gzipSync(buildTar(files));
    const index = await buildLayerIndex(Readable.from([blob]), sha256Of(blob), blob.length, { grid: 16 * KiB, windowSpacing: 1024 * KiB });
    const blobs = new Map<string, Buffer>([[index.layerDigest, blob]]);
    const calls: string[] = [];
    const source: RangeSource = {
      read: async (digest: Digest, start: number, end: number) => (calls.push(digest), blobs.get(digest)!.subarray(start, end)),
    };
    const tree = new MergedTree();
    await tree.addLayerEntries(index.entries);
    const profile = { version: 1 as const, files: [{ path: '/wanted' }] };
    const built = (await buildProfileWindows({ tree, reader: new ImageReader(tree, [new LayerReader(index, source, new SpanCache())]) }, profile))!;
    blobs.set(built.windows.digest, built.blob);
    const wanted = tree.lookup('/wanted')!;
    for (const coming of [Promise.resolve(built.blob), Promise.resolve(undefined)]) {
      calls.length = 0;
      const stored = parseProfile(encodeProfile({ ...profile, seekWindows: built.windows }).toString());
      stored.seekWindows!.coming = coming;
      const layer = new LayerReader(index, source, new SpanCache());
      layer.addProfileWindows(stored.seekWindows!);
      const image = new ImageReader(tree, [layer]);
      await image.prefetchReads(planProfile(tree, stored).reads);
      assert.ok((await image.read(wanted, 0, wanted.size)).equals(files[1]!.content));
      const windowReads = calls.filter((d) => d === built.windows.digest).length;
      assert.equal(windowReads, (await coming) ? 0 : 1, (await coming) ? 'no range read of the windows blob' : 'read by range when the whole blob did not come');
      assert.equal(calls.filter((d) => d === index.layerDigest).length, 1, 'and one range of the layer either way');
    }
  });

  it('are refused when they do not hold together', () => {
    const good = { digest: `sha256:${'a'.repeat(64)}`, size: 100, points: [{ layer: `sha256:${'b'.repeat(64)}`, out: 65536, offset: 0, length: 100, sha256: 'c'.repeat(64) }] };
    const text = (seekWindows: unknown) => JSON.stringify({ version: 1, files: [{ path: '/x' }], seekWindows });
    assert.deepEqual(parseProfile(text(good)).seekWindows, good);
    const bad = [
      { ...good, digest: 'sha256:nope' },
      { ...good, points: [{ ...good.points[0], offset: 50 }] },
      { ...good, points: [{ ...good.points[0], sha256: 'xyz' }] },
      { ...good, points: [{ ...good.points[0], layer: 'md5:1' }] },
      { ...good, points: 'all' },
    ];
    for (const windows of bad) assert.throws(() => parseProfile(text(windows)), (err: unknown) => isKrgoError(err) && err.code === 'USAGE', JSON.stringify(windows));
  });
});
