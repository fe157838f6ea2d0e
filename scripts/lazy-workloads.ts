/**
 * The lazy-mount workloads of the bench: programs run in a chroot of a mount made with an empty
 * cache over the emulated link, with the indexes in the registry, without and with an access
 * profile of the same workload; for each, time to ready and to done against `skopeo copy` of the
 * image in the same run, the bytes that crossed the link, and the compressed bytes that produce
 * exactly the files the workload read (its precision: fetched / needed).
 */
import { readFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GzipIndexBuilder, pointByte } from '../src/gzip/gzip-index.js';
import { buildLayerIndex } from '../src/index/layer-index.js';
import { parseDigest } from '../src/digest.js';
import { MergedTree } from '../src/vfs/merged-tree.js';
import { resolvePath } from '../src/vfs/resolve-path.js';
import { parseProfile } from '../src/vfs/access-profile.js';
import type { WanEmulator } from '../test/support/wan-emulator.js';
import { skopeoPush } from '../test/support/oci-layout.js';
import { DEBIAN_TAG } from '../test/support/debian-image.js';
import { runOk } from '../test/support/run.js';
import { KRGO_COMMAND } from '../test/support/krgo-cli.js';
import { lazyRun, log, median, now, pushWithProfile } from './bench-support.js';

export interface LazyWorkload {
  name: string;
  /** What the table calls it. */
  label: string;
  argv: string[];
  input?: string;
  image: 'base' | 'large';
}

/**
 * Chosen as a user of each would run them, not tuned on: only `print(42)` and gcc were measured
 * while the reader was designed. Nothing writes to /dev (FUSE mounts are nodev in a chroot).
 */
export const LAZY_WORKLOADS: LazyWorkload[] = [
  { name: 'python-print', label: "python3 -c 'print(42)'", argv: ['/usr/bin/python3', '-c', 'print(42)'], image: 'base' },
  {
    name: 'python-imports',
    label: 'python3, a program importing json, ssl, http.client, email, argparse, logging, urllib.request, decimal, csv, sqlite3',
    argv: ['/usr/bin/python3', '-c', 'import json, ssl, http.client, email.message, argparse, logging, urllib.request, decimal, csv, sqlite3\nprint(json.dumps({"ssl": ssl.OPENSSL_VERSION[:7], "d": str(decimal.Decimal(1) / 7)[:5]}))'],
    image: 'base',
  },
  { name: 'curl-version', label: 'curl --version', argv: ['/usr/bin/curl', '--version'], image: 'base' },
  { name: 'shell-pipeline', label: "bash -c 'ls -l /usr/bin | sort -k5 -n | tail -n 5 | cut -c1-30 | tr a-z A-Z | wc -c'", argv: ['/usr/bin/bash', '-c', 'ls -l /usr/bin | sort -k5 -n | tail -n 5 | cut -c1-30 | tr a-z A-Z | wc -c'], image: 'base' },
  { name: 'perl', label: "perl -MPOSIX -MGetopt::Long -MFile::Spec -e '…'", argv: ['/usr/bin/perl', '-MPOSIX', '-MGetopt::Long', '-MFile::Spec', '-e', 'print floor(7 / 2), " ", File::Spec->catfile("a", "b"), "\\n"'], image: 'base' },
  { name: 'gcc', label: 'gcc compiling a C file to assembly (larger image)', argv: ['/usr/bin/gcc', '-x', 'c', '-S', '-o', '-', '-'], input: 'int main(void) { return 0; }\n', image: 'large' },
];

/** Where the bench leaves the profiles it recorded (what each workload read). */
export const PROFILES_DIR = join(tmpdir(), 'krgo-bench-profiles');

/** The layers of the one image in a fixture layout. */
export async function layoutLayers(layoutDir: string): Promise<{ digest: string; size: number }[]> {
  const manifestPath = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')).manifests[0].digest.slice(7);
  return (JSON.parse(await readFile(join(layoutDir, 'blobs/sha256', manifestPath), 'utf8')) as { layers: { digest: string; size: number }[] }).layers;
}

/** A layer's deflate block boundaries: where each block starts, in both streams. */
interface BlockMap {
  compressedSize: number;
  /** Compressed offset of the first byte holding the block's bits, and its first output byte. */
  blocks: { in: number; out: number }[];
}

/** Every deflate block boundary of a gzip blob (one inflate pass; windows dropped as they come). */
async function blockMap(blob: Buffer): Promise<BlockMap> {
  const builder = new GzipIndexBuilder(1, Number.MAX_SAFE_INTEGER);
  const blocks: { in: number; out: number }[] = [];
  for await (const _chunk of builder.inflate(Readable.from([blob]))) {
    for (const c of builder.checkpoints.splice(0)) blocks.push({ in: pointByte(c), out: c.uncompressedOffset });
  }
  for (const c of builder.checkpoints.splice(0)) blocks.push({ in: pointByte(c), out: c.uncompressedOffset });
  return { compressedSize: blob.length, blocks };
}

/** The compressed range whose blocks produce uncompressed [start, end). */
function compressedRange(map: BlockMap, start: number, end: number): [number, number] {
  const { blocks } = map;
  let lo = 0;
  let hi = blocks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (blocks[mid]!.out <= start) lo = mid;
    else hi = mid - 1;
  }
  let after = lo + 1;
  while (after < blocks.length && blocks[after]!.out < end) after++;
  // The block that starts at or after `end` begins in the byte its predecessor ends in.
  return [blocks[lo]!.in, after < blocks.length ? Math.min(blocks[after]!.in + 1, map.compressedSize) : map.compressedSize];
}

/** An image of a fixture layout, ready to tell which compressed bytes a list of files needs. */
export class NeededBytes {
  private constructor(
    readonly tree: MergedTree,
    private readonly maps: BlockMap[],
  ) {}

  static async of(layoutDir: string): Promise<NeededBytes> {
    const tree = new MergedTree(() => undefined);
    const maps: BlockMap[] = [];
    for (const layer of await layoutLayers(layoutDir)) {
      const blob = await readFile(join(layoutDir, 'blobs/sha256', layer.digest.slice(7)));
      const index = await buildLayerIndex(Readable.from([blob]), parseDigest(layer.digest), blob.length, { grid: 64 * 1024 * 1024, windowSpacing: 64 * 1024 * 1024 });
      await tree.addLayerEntries(index.entries);
      maps.push(await blockMap(blob));
    }
    return new NeededBytes(tree, maps);
  }

  /** Compressed bytes (at deflate-block precision) producing what a recorded profile read, and its files' bytes. */
  of(profileText: string): { compressed: number; files: number; uncompressed: number } {
    const perLayer = new Map<number, [number, number][]>();
    let files = 0;
    let uncompressed = 0;
    for (const file of parseProfile(profileText).files) {
      const inode = resolvePath(this.tree, file.path);
      if (inode?.type !== 'file') continue;
      files++;
      for (const [offset, length] of file.ranges ?? [[0, inode.size]]) {
        const plan = this.tree.readPlan(inode, offset, length);
        if (!plan) continue;
        uncompressed += plan.length;
        const ranges = perLayer.get(plan.layer) ?? [];
        perLayer.set(plan.layer, ranges);
        ranges.push(compressedRange(this.maps[plan.layer]!, plan.offset, plan.offset + plan.length));
      }
    }
    let compressed = 0;
    for (const ranges of perLayer.values()) {
      ranges.sort((a, b) => a[0] - b[0]);
      let [s, e] = ranges[0]!;
      for (const [rs, re] of ranges.slice(1)) {
        if (rs <= e) e = Math.max(e, re);
        else {
          compressed += e - s;
          [s, e] = [rs, re];
        }
      }
      compressed += e - s;
    }
    return { compressed, files, uncompressed };
  }
}

export interface WorkloadResult {
  workload: LazyWorkload;
  imageBytes: number;
  skopeo: number;
  needed: { compressed: number; files: number; uncompressed: number };
  plain: { ready: number; done: number; bytes: number };
  profiled: { ready: number; done: number; bytes: number };
}

/**
 * Runs each workload `repeat` times on one image (pushed under `repo`, indexed, and once more per
 * workload with its own profile), a `skopeo copy` of the image in each round; medians.
 */
export async function benchWorkloads(options: {
  layout: string;
  registryHost: string;
  wan: WanEmulator;
  workDir: string;
  repo: string;
  workloads: LazyWorkload[];
  repeat: number;
}): Promise<WorkloadResult[]> {
  const { layout, registryHost, wan, workDir, repo, workloads, repeat } = options;
  const imageBytes = (await layoutLayers(layout)).reduce((a, l) => a + l.size, 0);
  const plain = `${registryHost}/bench/${repo}:bookworm`;
  await skopeoPush(layout, DEBIAN_TAG, plain, 'v2s2');
  await runOk(KRGO_COMMAND, ['index', '--push', plain, '--cache-dir', join(workDir, `cache-${repo}-indexer`)]);
  const needed = await NeededBytes.of(layout);
  const profiles = new Map<string, { image: string; needed: WorkloadResult['needed'] }>();
  for (const w of workloads) {
    const image = `${registryHost}/bench/${repo}-${w.name}:bookworm`;
    await skopeoPush(layout, DEBIAN_TAG, image, 'v2s2');
    const profileFile = await recordAndPushProfile(image, workDir, w);
    const text = await readFile(profileFile, 'utf8');
    profiles.set(w.name, { image, needed: needed.of(text) });
    // Kept for `npm run bench:density`, which replays them against other seek point densities.
    await mkdir(PROFILES_DIR, { recursive: true });
    await writeFile(join(PROFILES_DIR, `${w.name}.profile`), text);
  }
  const via = (image: string) => image.replace(registryHost, wan.host);
  const runs = new Map(workloads.map((w) => [w.name, { plain: [] as WorkloadResult['plain'][], profiled: [] as WorkloadResult['profiled'][] }]));
  const skopeo: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const dir = join(workDir, `${repo}-round${i}`);
    await mkdir(dir, { recursive: true });
    const t = now();
    await runOk('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${via(plain)}`, `oci:${join(dir, 'layout')}:img`]);
    skopeo.push(now() - t);
    await rm(join(dir, 'layout'), { recursive: true, force: true });
    for (const w of workloads) {
      const run = runs.get(w.name)!;
      run.plain.push(await lazyRun(wan, via(plain), join(dir, `${w.name}-plain`), w.argv, w.input));
      run.profiled.push(await lazyRun(wan, via(profiles.get(w.name)!.image), join(dir, `${w.name}-profiled`), w.argv, w.input));
      const p = run.plain[i]!;
      const q = run.profiled[i]!;
      log(`${repo} round ${i + 1}/${repeat}, ${w.name}: skopeo ${skopeo[i]!.toFixed(2)} s; ready ${p.ready.toFixed(2)} s, done ${p.done.toFixed(2)} s, ${(p.bytes / 1e6).toFixed(2)} MB; with profile ready ${q.ready.toFixed(2)} s, done ${q.done.toFixed(2)} s, ${(q.bytes / 1e6).toFixed(2)} MB`);
    }
    await rm(dir, { recursive: true, force: true });
  }
  const mid = (runs: { ready: number; done: number; bytes: number }[]) => ({ ready: median(runs.map((r) => r.ready)), done: median(runs.map((r) => r.done)), bytes: median(runs.map((r) => r.bytes)) });
  return workloads.map((workload) => ({ workload, imageBytes, skopeo: median(skopeo), needed: profiles.get(workload.name)!.needed, plain: mid(runs.get(workload.name)!.plain), profiled: mid(runs.get(workload.name)!.profiled) }));
}

/** Records what the workload reads on a loopback mount, pushes it as the image's profile, returns the profile file. */
async function recordAndPushProfile(image: string, workDir: string, w: LazyWorkload): Promise<string> {
  await pushWithProfile(image, workDir, w.name, w.argv, w.input);
  return join(workDir, `${w.name}.profile`);
}

/** The workloads' table (markdown rows after a header). */
export function workloadTable(results: WorkloadResult[]): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const mb = (x: number) => f(x / 1e6);
  const rows = [
    ['workload', 'files read (MB)', 'needed (MB compressed)', 'ready (s)', 'done (s)', 'vs skopeo copy', 'fetched (MB)', '% of image', 'fetched / needed', 'with profile: done (s)', 'vs skopeo', 'fetched (MB)', '% of image', 'fetched / needed'],
    ...results.map((r) => [
      r.workload.label.replace(/\|/g, '\\|'),
      `${r.needed.files} (${mb(r.needed.uncompressed)})`,
      mb(r.needed.compressed),
      f(r.plain.ready),
      f(r.plain.done),
      f(r.plain.done / r.skopeo),
      mb(r.plain.bytes),
      `${f((100 * r.plain.bytes) / r.imageBytes, 1)}%`,
      f(r.plain.bytes / r.needed.compressed),
      f(r.profiled.done),
      f(r.profiled.done / r.skopeo),
      mb(r.profiled.bytes),
      `${f((100 * r.profiled.bytes) / r.imageBytes, 1)}%`,
      f(r.profiled.bytes / r.needed.compressed),
    ]),
  ];
  const lines = rows.map((row) => `| ${row.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  return lines.join('\n');
}
