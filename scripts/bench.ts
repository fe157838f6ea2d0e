/**
 * npm run bench: krgo against its peers over an emulated WAN link (default 25 ms each way,
 * 100 Mbit/s; BENCH_DELAY_MS, BENCH_MBIT), side by side in one run, medians of BENCH_REPEAT
 * runs, reported as ratios. Prints one table and writes bench-results.json.
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { Readable } from 'node:stream';
import { startRegistry } from '../test/support/registry.js';
import { startWanEmulator } from '../test/support/wan-emulator.js';
import { skopeoPush } from '../test/support/oci-layout.js';
import { debianImageLayout, largeDebianImageLayout, DEBIAN_TAG } from '../test/support/debian-image.js';
import type { WanEmulator } from '../test/support/wan-emulator.js';
import { tempDir } from '../test/support/temp.js';
import { runOk } from '../test/support/run.js';
import { KRGO_COMMAND } from '../test/support/krgo-cli.js';
import { encodeIndex } from '../src/index/index-codec.js';
import { buildLayerIndex, PUSHED_SEEK_DENSITY } from '../src/index/layer-index.js';
import { parseDigest } from '../src/digest.js';
import { benchWorkloads, LAZY_WORKLOADS, layoutLayers, workloadTable, type WorkloadResult } from './lazy-workloads.js';
import { benchDerive } from './bench-derive.js';
import { detachMountsUnder, lazyRun, log, median, mountForeground, now, pushWithProfile, timed } from './bench-support.js';

const REPEAT = Number(process.env['BENCH_REPEAT'] ?? 3);
const DELAY = Number(process.env['BENCH_DELAY_MS'] ?? 25);
const MBIT = Number(process.env['BENCH_MBIT'] ?? 100);

async function filesUnder(root: string, rel: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) out.push(path);
    }
  };
  await walk(rel);
  return out;
}

/** Reads every file once; returns MB/s. */
async function readAll(root: string, files: string[]): Promise<{ mbps: number; bytes: number }> {
  const t = now();
  let bytes = 0;
  for (const f of files) bytes += (await readFile(join(root, f))).length;
  return { mbps: bytes / 1e6 / (now() - t), bytes };
}

async function withTimeout<T>(ms: number, task: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([task(), new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function statWalk(root: string): Promise<number> {
  const t = now();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      await stat(join(dir, entry.name)).catch(() => undefined);
      if (entry.isDirectory()) await walk(join(dir, entry.name));
    }
  };
  await walk(root);
  return now() - t;
}

const ZONEINFO = 'usr/share/zoneinfo';
const COMPILE = 'int main(void) { return 0; }\n';
const PYTHON = ['/usr/bin/python3', '-c', 'print(42)'];
// To assembly on stdout: the mount is read-only and FUSE mounts are nodev (no /dev/null to write to).
const GCC = ['/usr/bin/gcc', '-x', 'c', '-S', '-o', '-', '-'];

/**
 * The larger image (a fourth layer with gcc, g++ and make): eager pull, first mount, and a lazy
 * mount with the index in the registry until gcc has compiled a C file in a chroot.
 */
async function benchLargeImage(registryHost: string, wan: WanEmulator, workDir: string) {
  const layout = await largeDebianImageLayout(log);
  await skopeoPush(layout, DEBIAN_TAG, `${registryHost}/bench/large:bookworm`, 'v2s2');
  await skopeoPush(layout, DEBIAN_TAG, `${registryHost}/bench/large-indexed:bookworm`, 'v2s2');
  await runOk(KRGO_COMMAND, ['index', '--push', `${registryHost}/bench/large-indexed:bookworm`, '--cache-dir', join(workDir, 'cache-large-indexer')]);
  await skopeoPush(layout, DEBIAN_TAG, `${registryHost}/bench/large-profiled:bookworm`, 'v2s2');
  await pushWithProfile(`${registryHost}/bench/large-profiled:bookworm`, workDir, 'gcc', GCC, COMPILE);
  const layers = await layoutLayers(layout);
  const imageBytes = layers.reduce((a, l) => a + l.size, 0);
  const via = (repo: string) => `${wan.host}/bench/${repo}:bookworm`;
  const r = { pull: [] as number[], skopeo: [] as number[], umoci: [] as number[], coldReady: [] as number[], ready: [] as number[], compiled: [] as number[], bytes: [] as number[], profiled: [] as number[], profiledBytes: [] as number[] };
  for (let i = 0; i < REPEAT; i++) {
    const dir = join(workDir, `large${i}`);
    await mkdir(dir);
    r.pull.push((await timed(KRGO_COMMAND, ['pull', via('large'), '-r', join(dir, 'rootfs'), '--cache-dir', join(dir, 'cache-pull'), '-q'])).seconds);
    r.skopeo.push((await timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${via('large')}`, `oci:${join(dir, 'layout')}:img`])).seconds);
    r.umoci.push((await timed('umoci', ['unpack', '--image', `${join(dir, 'layout')}:img`, join(dir, 'bundle')])).seconds);
    await rm(join(dir, 'bundle'), { recursive: true, force: true });
    const cold = await mountForeground(via('large'), join(dir, 'mnt-cold'), join(dir, 'cache-cold'));
    r.coldReady.push(cold.readySeconds);
    await cold.stop();
    wan.reset();
    const t = now();
    const warm = await mountForeground(via('large-indexed'), join(dir, 'mnt'), join(dir, 'cache-lazy'));
    r.ready.push(warm.readySeconds);
    await runOk('chroot', [join(dir, 'mnt'), ...GCC], { input: COMPILE });
    r.compiled.push(now() - t);
    r.bytes.push(wan.bytesToClient);
    await warm.stop();
    const profiled = await lazyRun(wan, via('large-profiled'), join(dir, 'profiled'), GCC, COMPILE);
    r.profiled.push(profiled.done);
    r.profiledBytes.push(profiled.bytes);
    await rm(dir, { recursive: true, force: true });
    log(`large run ${i + 1}/${REPEAT}: pull ${r.pull[i]!.toFixed(2)} s, skopeo+umoci ${(r.skopeo[i]! + r.umoci[i]!).toFixed(2)} s, cold mount ${r.coldReady[i]!.toFixed(2)} s, lazy ready ${r.ready[i]!.toFixed(2)} s, gcc ${r.compiled[i]!.toFixed(2)} s, ${(r.bytes[i]! / 1e6).toFixed(1)} MB; with profile gcc ${r.profiled[i]!.toFixed(2)} s, ${(r.profiledBytes[i]! / 1e6).toFixed(1)} MB`);
  }
  const m = median;
  return {
    image: `the same + a layer with gcc, g++ and make and their dependencies: ${layers.length} layers, ${(imageBytes / 1e6).toFixed(1)} MB compressed`,
    imageBytes,
    eager: { krgoPull: m(r.pull), peer: m(r.skopeo) + m(r.umoci), ratio: m(r.pull) / (m(r.skopeo) + m(r.umoci)) },
    coldMount: { ready: m(r.coldReady), skopeoCopy: m(r.skopeo), ratio: m(r.coldReady) / m(r.skopeo) },
    lazyMount: { ready: m(r.ready), compiled: m(r.compiled), bytes: m(r.bytes), timeVsPull: m(r.compiled) / m(r.pull), timeVsSkopeo: m(r.compiled) / m(r.skopeo), bytesShare: m(r.bytes) / imageBytes },
    profiledMount: { compiled: m(r.profiled), bytes: m(r.profiledBytes), timeVsPull: m(r.profiled) / m(r.pull), timeVsSkopeo: m(r.profiled) / m(r.skopeo), bytesShare: m(r.profiledBytes) / imageBytes },
  };
}

const layout = await debianImageLayout(log);
const registry = await startRegistry();
const wan = await startWanEmulator(registry.host, { delayMs: DELAY, bitsPerSecond: MBIT * 1e6 });
const work = await tempDir('bench');
try {
  await skopeoPush(layout, DEBIAN_TAG, `${registry.host}/bench/noindex:bookworm`, 'v2s2');
  await skopeoPush(layout, DEBIAN_TAG, `${registry.host}/bench/indexed:bookworm`, 'v2s2');
  const viaWan = (repo: string) => `${wan.host}/bench/${repo}:bookworm`;
  const indexed = await runOk(KRGO_COMMAND, ['index', '--push', `${registry.host}/bench/indexed:bookworm`, '--cache-dir', join(work.path, 'cache-indexer')]);
  log(indexed.stdout.trim().split('\n').pop() ?? '');
  // The same image with an access profile beside its indexes: what python3 read on one mount.
  await skopeoPush(layout, DEBIAN_TAG, `${registry.host}/bench/profiled:bookworm`, 'v2s2');
  await pushWithProfile(`${registry.host}/bench/profiled:bookworm`, work.path, 'python', PYTHON);
  const manifest = { layers: await layoutLayers(layout) };
  const imageBytes = manifest.layers.reduce((a, l) => a + l.size, 0);
  const largestBlobPath = join(layout, 'blobs/sha256', manifest.layers.reduce((a, b) => (a.size > b.size ? a : b)).digest.slice(7));

  const r = { pull: [] as number[], pullGit: [] as number[], pullGitRss: [] as number[], coldRss: [] as number[], pullRss: [] as number[], skopeo: [] as number[], skopeoRss: [] as number[], umoci: [] as number[], umociRss: [] as number[],
    coldReady: [] as number[], warmReady: [] as number[], python: [] as number[], lazyBytes: [] as number[], mountRss: [] as number[],
    profiledReady: [] as number[], profiledPython: [] as number[], profiledBytes: [] as number[],
    readMount: [] as number[], readDisk: [] as number[], walkMount: [] as number[], walkDisk: [] as number[],
    libMount: [] as number[], libArchive: [] as number[], zoneMount: [] as number[], zoneArchive: [] as number[] };
  for (let i = 0; i < REPEAT; i++) {
    const dir = join(work.path, `run${i}`);
    await mkdir(dir);
    const pull = await timed(KRGO_COMMAND, ['pull', viaWan('noindex'), '-r', join(dir, 'rootfs'), '--cache-dir', join(dir, 'cache-pull'), '-q']);
    const copy = await timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${viaWan('noindex')}`, `oci:${join(dir, 'layout')}:img`]);
    const unpack = await timed('umoci', ['unpack', '--image', `${join(dir, 'layout')}:img`, join(dir, 'bundle')]);
    // The same pull with one git branch per layer (issue #4 asks for this ratio).
    const pullGit = await timed(KRGO_COMMAND, ['pull', viaWan('noindex'), '-g', '-r', join(dir, 'rootfs-git'), '--cache-dir', join(dir, 'cache-pull-git'), '-q']);
    await rm(join(dir, 'rootfs-git'), { recursive: true, force: true });
    await rm(join(dir, '.rootfs-git.krgo'), { recursive: true, force: true });
    r.pull.push(pull.seconds); r.pullRss.push(pull.rssMb); r.pullGit.push(pullGit.seconds); r.pullGitRss.push(pullGit.rssMb);
    r.skopeo.push(copy.seconds); r.skopeoRss.push(copy.rssMb);
    r.umoci.push(unpack.seconds); r.umociRss.push(unpack.rssMb);

    // First mount, no index anywhere: one pass over every layer.
    const cold = await mountForeground(viaWan('noindex'), join(dir, 'mnt-cold'), join(dir, 'cache-cold'));
    r.coldReady.push(cold.readySeconds);
    r.coldRss.push(await cold.peakRssMb());
    await cold.stop();

    // Index in the registry, empty cache: time to ready, then python3 in a chroot.
    wan.reset();
    const t = now();
    const warm = await mountForeground(viaWan('indexed'), join(dir, 'mnt'), join(dir, 'cache-lazy'));
    r.warmReady.push(warm.readySeconds);
    await runOk('chroot', [join(dir, 'mnt'), ...PYTHON]);
    r.python.push(now() - t);
    r.lazyBytes.push(wan.bytesToClient);

    // The same with the access profile pushed beside the indexes.
    const profiled = await lazyRun(wan, viaWan('profiled'), join(dir, 'profiled'), PYTHON);
    r.profiledReady.push(profiled.ready);
    r.profiledPython.push(profiled.done);
    r.profiledBytes.push(profiled.bytes);

    // Warm reads (second pass, spans cached) and a stat walk, against the pulled tree on disk.
    const files = await filesUnder(join(dir, 'rootfs'), 'usr/lib/python3.11');
    await readAll(join(dir, 'mnt'), files);
    r.readMount.push((await readAll(join(dir, 'mnt'), files)).mbps);
    r.readDisk.push((await readAll(join(dir, 'rootfs'), files)).mbps);
    r.walkMount.push(await statWalk(join(dir, 'mnt')));
    r.walkDisk.push(await statWalk(join(dir, 'rootfs')));
    r.mountRss.push(await warm.peakRssMb());

    await warm.stop();
    await rm(dir, { recursive: true, force: true });
    log(`run ${i + 1}/${REPEAT}: pull ${pull.seconds.toFixed(2)} s, pull -g ${pullGit.seconds.toFixed(2)} s, skopeo+umoci ${(copy.seconds + unpack.seconds).toFixed(2)} s, cold mount ${cold.readySeconds.toFixed(2)} s, lazy ready ${warm.readySeconds.toFixed(2)} s, python ${r.python[i]!.toFixed(2)} s, ${(r.lazyBytes[i]! / 1e6).toFixed(1)} MB; with profile python ${r.profiledPython[i]!.toFixed(2)} s, ${(r.profiledBytes[i]! / 1e6).toFixed(1)} MB`);
  }

  // archivemount of the base layer against a krgo mount of the image: the same sample of base-layer
  // files (archivemount inflates the archive from its start for each file), once, time-bounded.
  try {
    await withTimeout(300_000, async () => {
      const dir = join(work.path, 'archivemount');
      await mkdir(dir);
      const mount = await mountForeground(viaWan('indexed'), join(dir, 'mnt'), join(dir, 'cache'));
      const archive = join(dir, 'archive');
      await mkdir(archive);
      await runOk('archivemount', ['-o', 'ro,readonly', largestBlobPath, archive]);
      try {
        const sample = (await filesUnder(archive, 'usr/lib/x86_64-linux-gnu')).sort().filter((_, k) => k % 25 === 0);
        await readAll(join(dir, 'mnt'), sample);
        r.libMount.push((await readAll(join(dir, 'mnt'), sample)).mbps);
        r.libArchive.push((await readAll(archive, sample)).mbps);
        // A stat walk of one subtree: a full walk of this layer hangs archivemount 0.2 (it stops
        // answering partway, in /etc/pam.d); the zoneinfo tree (1300 entries) it walks.
        for (const root of [join(dir, 'mnt'), archive]) await statWalk(join(root, ZONEINFO));
        r.zoneMount.push(await statWalk(join(dir, 'mnt', ZONEINFO)));
        r.zoneArchive.push(await statWalk(join(archive, ZONEINFO)));
      } finally {
        await runOk('fusermount', ['-uz', archive]).catch(() => undefined);
        await mount.stop();
      }
    });
  } catch (err) {
    log(`archivemount comparison failed: ${(err as Error).message}`);
  }

  // Change + commit + push of a derived image: a writable lazy mount against the eager flow.
  const derive = await benchDerive(wan, viaWan('indexed'), work.path, REPEAT);

  const large = process.env['BENCH_LARGE'] === '0' ? undefined : await benchLargeImage(registry.host, wan, work.path);

  // The lazy workloads (lazy-workloads.ts): time, bytes and precision, without and with a profile.
  const only = process.env['BENCH_WORKLOADS']?.split(',');
  const workloadResults: WorkloadResult[] = [];
  for (const image of ['base', 'large'] as const) {
    const some = LAZY_WORKLOADS.filter((w) => w.image === image && (!only || only.includes(w.name)));
    if (!some.length || (image === 'large' && process.env['BENCH_LARGE'] === '0')) continue;
    const imageLayout = image === 'base' ? layout : await largeDebianImageLayout(log);
    workloadResults.push(...(await benchWorkloads({ layout: imageLayout, registryHost: registry.host, wan, workDir: work.path, repo: `workloads-${image}`, workloads: some, repeat: REPEAT })));
  }

  // Index size and build throughput against gzip -dc, on the largest layer (local, no link).
  const largest = manifest.layers.reduce((a, b) => (a.size > b.size ? a : b));
  const blobPath = join(layout, 'blobs/sha256', largest.digest.slice(7));
  const blob = await readFile(blobPath);
  const gz: number[] = [];
  const build: number[] = [];
  const localBuild: number[] = [];
  let indexBytes = 0;
  let windowBytes = 0;
  for (let i = 0; i < 3; i++) {
    gz.push((await timed('sh', ['-c', `gzip -dc ${blobPath} > /dev/null`])).seconds);
    // As `krgo index` builds it for a registry (sparse windows), and as a mount or pull does here.
    let t = now();
    const index = await buildLayerIndex(Readable.from([blob]), parseDigest(largest.digest), blob.length, PUSHED_SEEK_DENSITY);
    build.push(now() - t);
    indexBytes = encodeIndex(index).length;
    windowBytes = index.windows.size;
    t = now();
    await buildLayerIndex(Readable.from([blob]), parseDigest(largest.digest), blob.length);
    localBuild.push(now() - t);
  }

  const m = (xs: number[]) => median(xs);
  const peer = m(r.skopeo) + m(r.umoci);
  const results = {
    date: new Date().toISOString(),
    machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    link: `${DELAY} ms each way, ${MBIT} Mbit/s`,
    image: `debian bookworm, 3 layers (debootstrap minbase; python3 and curl with their dependencies; deletions), ${(imageBytes / 1e6).toFixed(1)} MB compressed`,
    repeat: REPEAT,
    eager: { krgoPull: m(r.pull), skopeoCopy: m(r.skopeo), umociUnpack: m(r.umoci), ratio: m(r.pull) / peer, goal: 0.6 },
    git: { pullGit: m(r.pullGit), krgoPull: m(r.pull), ratio: m(r.pullGit) / m(r.pull) },
    coldMount: { ready: m(r.coldReady), skopeoCopy: m(r.skopeo), ratio: m(r.coldReady) / m(r.skopeo), goal: 1.1 },
    lazyMount: {
      ready: m(r.warmReady), pythonDone: m(r.python), bytes: m(r.lazyBytes), imageBytes,
      timeVsPull: m(r.python) / m(r.pull), timeVsSkopeo: m(r.python) / m(r.skopeo), bytesShare: m(r.lazyBytes) / imageBytes, goalTime: 0.25, goalBytes: 0.15,
    },
    profiledMount: {
      ready: m(r.profiledReady), pythonDone: m(r.profiledPython), bytes: m(r.profiledBytes),
      timeVsPull: m(r.profiledPython) / m(r.pull), timeVsSkopeo: m(r.profiledPython) / m(r.skopeo), bytesShare: m(r.profiledBytes) / imageBytes,
    },
    warmReads: { mountMBps: m(r.readMount), diskMBps: m(r.readDisk), ratio: m(r.readMount) / m(r.readDisk), goal: 0.5, walkMount: m(r.walkMount), walkDisk: m(r.walkDisk), walkRatio: m(r.walkMount) / m(r.walkDisk), walkGoal: 3 },
    archivemount: { libMountMBps: m(r.libMount), libArchiveMBps: m(r.libArchive), zoneWalkMount: m(r.zoneMount), zoneWalkArchive: m(r.zoneArchive), zoneWalkRatio: m(r.zoneMount) / m(r.zoneArchive) },
    index: { layerBytes: largest.size, indexBytes, windowBytes, share: indexBytes / largest.size, buildSeconds: median(build), localBuildSeconds: median(localBuild), gzipDcSeconds: median(gz), speedVsGzip: median(gz) / median(build) },
    derive,
    rssMb: { krgoPull: m(r.pullRss), krgoPullGit: m(r.pullGitRss), krgoColdMount: m(r.coldRss), krgoMount: m(r.mountRss), skopeo: m(r.skopeoRss), umoci: m(r.umociRss) },
    large,
  };
  const f = (x: number, d = 2) => x.toFixed(d);
  const rows = [
    ['case', 'krgo', 'peer', 'ratio', 'goal'],
    ['1. eager pull (s)', f(results.eager.krgoPull), `skopeo copy + umoci unpack ${f(peer)}`, f(results.eager.ratio), '≤ 0.6'],
    ['1. … `pull -g`, one git branch per layer (s)', f(results.git.pullGit), `krgo pull ${f(results.git.krgoPull)}`, f(results.git.ratio), ''],
    ['2. first mount, no index: ready (s)', f(results.coldMount.ready), `skopeo copy ${f(results.coldMount.skopeoCopy)}`, f(results.coldMount.ratio), '≤ 1.1'],
    ['3. mount, index in registry, empty cache: ready (s)', f(results.lazyMount.ready), `krgo pull ${f(results.eager.krgoPull)}`, f(results.lazyMount.ready / results.eager.krgoPull), ''],
    ['3. … until `python3 -c` ran in chroot (s)', f(results.lazyMount.pythonDone), `krgo pull ${f(results.eager.krgoPull)} / skopeo copy ${f(results.eager.skopeoCopy)}`, `${f(results.lazyMount.timeVsPull)} / ${f(results.lazyMount.timeVsSkopeo)}`, '≤ 0.25'],
    ['3. … bytes fetched (MB)', f(results.lazyMount.bytes / 1e6, 1), `image ${f(imageBytes / 1e6, 1)}`, `${f(100 * results.lazyMount.bytesShare, 1)}%`, '≤ 15%'],
    ['3. … with an access profile pushed too (python3 recorded once): until `python3 -c` ran (s)', f(results.profiledMount.pythonDone), `krgo pull ${f(results.eager.krgoPull)} / skopeo copy ${f(results.eager.skopeoCopy)}`, `${f(results.profiledMount.timeVsPull)} / ${f(results.profiledMount.timeVsSkopeo)}`, '≤ 0.25'],
    ['3. … with the profile: bytes fetched (MB)', f(results.profiledMount.bytes / 1e6, 1), `image ${f(imageBytes / 1e6, 1)}`, `${f(100 * results.profiledMount.bytesShare, 1)}%`, '≤ 15%'],
    ['4. warm reads, python stdlib (MB/s)', f(results.warmReads.mountMBps, 0), `local disk ${f(results.warmReads.diskMBps, 0)}`, f(results.warmReads.ratio), '≥ 0.5'],
    ['4. stat walk of the tree (s)', f(results.warmReads.walkMount), `local disk ${f(results.warmReads.walkDisk)}`, f(results.warmReads.walkRatio), '≤ 3'],
    ['4. warm reads, sample of base-layer libraries (MB/s)', f(results.archivemount.libMountMBps, 1), `archivemount ${f(results.archivemount.libArchiveMBps, 1)}`, `${f(results.archivemount.libMountMBps / results.archivemount.libArchiveMBps, 0)}×`, ''],
    ['4. stat walk of /usr/share/zoneinfo (s)', f(results.archivemount.zoneWalkMount, 3), `archivemount ${f(results.archivemount.zoneWalkArchive, 3)}`, f(results.archivemount.zoneWalkRatio), ''],
    ['5. index size, fetched by a mount (largest layer)', `${f(indexBytes / 1e6, 3)} MB`, `layer ${f(largest.size / 1e6, 1)} MB`, `${f(100 * results.index.share, 2)}%`, ''],
    ['5. … its seek windows (sparse, every 64 KiB), fetched one by one when read', `${f(windowBytes / 1e6)} MB`, `layer ${f(largest.size / 1e6, 1)} MB`, `${f((100 * windowBytes) / largest.size, 1)}%`, ''],
    ['5. index build, as `krgo index` pushes it (s)', f(results.index.buildSeconds), `gzip -dc ${f(results.index.gzipDcSeconds)}`, `${f(results.index.speedVsGzip)}× faster`, ''],
    ['5. … as a mount or pull builds it (whole windows every 128 KiB) (s)', f(results.index.localBuildSeconds), `gzip -dc ${f(results.index.gzipDcSeconds)}`, `${f(results.index.gzipDcSeconds / results.index.localBuildSeconds)}× faster`, ''],
    ['6. peak RSS (MB)', `pull ${f(results.rssMb.krgoPull, 0)}, pull -g ${f(results.rssMb.krgoPullGit, 0)}, first mount ${f(results.rssMb.krgoColdMount, 0)}, lazy mount ${f(results.rssMb.krgoMount, 0)}`, `skopeo ${f(results.rssMb.skopeo, 0)}, umoci ${f(results.rssMb.umoci, 0)}`, '', ''],
    ['7. change + commit + push a derived image: `mount -w`, change, `commit`, `push` (s)', f(derive.krgo.seconds), `skopeo copy, umoci unpack, change, umoci repack, skopeo copy ${f(derive.peer.seconds)}`, f(derive.timeRatio), '≤ 0.2'],
    ['7. … bytes downloaded (MB)', f(derive.krgo.bytes / 1e6, 1), `the same flow ${f(derive.peer.bytes / 1e6, 1)}`, `${f(100 * derive.bytesRatio, 1)}%`, '≤ 10%'],
  ];
  if (large) {
    rows.push(
      [`larger image (${f(large.imageBytes / 1e6, 1)} MB): eager pull (s)`, f(large.eager.krgoPull), `skopeo copy + umoci unpack ${f(large.eager.peer)}`, f(large.eager.ratio), '≤ 0.6'],
      ['… first mount, no index: ready (s)', f(large.coldMount.ready), `skopeo copy ${f(large.coldMount.skopeoCopy)}`, f(large.coldMount.ratio), '≤ 1.1'],
      ['… index in registry: ready (s)', f(large.lazyMount.ready), `krgo pull ${f(large.eager.krgoPull)}`, f(large.lazyMount.ready / large.eager.krgoPull), ''],
      ['… until gcc compiled a C file (to assembly) in chroot (s)', f(large.lazyMount.compiled), `krgo pull ${f(large.eager.krgoPull)} / skopeo copy ${f(large.coldMount.skopeoCopy)}`, `${f(large.lazyMount.timeVsPull)} / ${f(large.lazyMount.timeVsSkopeo)}`, '≤ 0.25'],
      ['… bytes fetched (MB)', f(large.lazyMount.bytes / 1e6, 1), `image ${f(large.imageBytes / 1e6, 1)}`, `${f(100 * large.lazyMount.bytesShare, 1)}%`, '≤ 15%'],
      ['… with an access profile pushed too (gcc recorded once): until gcc compiled (s)', f(large.profiledMount.compiled), `krgo pull ${f(large.eager.krgoPull)} / skopeo copy ${f(large.coldMount.skopeoCopy)}`, `${f(large.profiledMount.timeVsPull)} / ${f(large.profiledMount.timeVsSkopeo)}`, '≤ 0.25'],
      ['… with the profile: bytes fetched (MB)', f(large.profiledMount.bytes / 1e6, 1), `image ${f(large.imageBytes / 1e6, 1)}`, `${f(100 * large.profiledMount.bytesShare, 1)}%`, '≤ 15%'],
    );
  }
  const table = rows.map((row) => `| ${row.join(' | ')} |`);
  table.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  const images = `${results.image}${large ? `; larger image: ${large.image}` : ''}`;
  process.stdout.write(`${results.machine}; link ${results.link}; ${images}; median of ${REPEAT}; ${results.date}\n\n${table.join('\n')}\n`);
  if (workloadResults.length) process.stdout.write(`\nLazy workloads (mount with the indexes in the registry, empty cache; needed = the compressed bytes that produce exactly the pages the workload read):\n\n${workloadTable(workloadResults)}\n`);
  const workloads = workloadResults.map((r) => ({ name: r.workload.name, neededBytes: r.needed.compressed, skopeoCopy: r.skopeo, imageBytes: r.imageBytes, plain: r.plain, profiled: r.profiled }));
  await writeFile(join(process.cwd(), 'bench-results.json'), `${JSON.stringify({ ...results, workloads }, null, 2)}\n`);
} finally {
  // A timed-out phase may leave mounts behind: detach them before removing the work dir.
  await detachMountsUnder(work.path);
  await wan.stop();
  await registry.stop();
  await work.remove();
}
