/**
 * npm run bench: krgo against its peers, side by side in one run, ratios reported.
 * Today: the eager pull (krgo pull vs skopeo copy + umoci unpack) of a real three-layer Debian
 * image on a loopback registry. Runs alternate between the tools; the median of each is kept.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { startRegistry } from '../test/support/registry.js';
import { skopeoPush } from '../test/support/oci-layout.js';
import { debianImageLayout, DEBIAN_TAG } from '../test/support/debian-image.js';
import { tempDir } from '../test/support/temp.js';
import { runOk } from '../test/support/run.js';
import { KRGO_BIN } from '../test/support/krgo-cli.js';

const REPEAT = Number(process.env['BENCH_REPEAT'] ?? 5);

interface Sample {
  seconds: number;
  peakRssMb?: number;
}

/** Wall time of a command, and its peak RSS through GNU time when present. */
async function timed(cmd: string, args: string[]): Promise<Sample> {
  // Start each tool with no dirty pages left by the one before: writeback would bill it.
  await runOk('sync', []);
  const started = process.hrtime.bigint();
  const res = await runOk('/usr/bin/time', ['-f', 'KRGO_RSS_KB=%M', cmd, ...args]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rss = /KRGO_RSS_KB=(\d+)/.exec(res.stderr)?.[1];
  return { seconds, ...(rss ? { peakRssMb: Number(rss) / 1024 } : {}) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const layout = await debianImageLayout((line) => process.stderr.write(`# ${line}\n`));
const registry = await startRegistry();
const work = await tempDir('bench');
try {
  const image = `${registry.host}/library/debian:bookworm`;
  await skopeoPush(layout, DEBIAN_TAG, image, 'v2s2');
  const krgoRuns: Sample[] = [];
  const peerRuns: Sample[] = [];
  const skopeoRuns: Sample[] = [];
  const umociRuns: Sample[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const dir = join(work.path, `run${i}`);
    await mkdir(dir);
    krgoRuns.push(await timed(process.execPath, [KRGO_BIN, 'pull', image, '-r', join(dir, 'krgo'), '--cache-dir', join(dir, 'cache'), '-q']));
    const copy = await timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${image}`, `oci:${join(dir, 'layout')}:img`]);
    const unpack = await timed('umoci', ['unpack', '--image', `${join(dir, 'layout')}:img`, join(dir, 'bundle')]);
    skopeoRuns.push(copy);
    umociRuns.push(unpack);
    peerRuns.push({ seconds: copy.seconds + unpack.seconds });
    await rm(dir, { recursive: true, force: true });
    process.stderr.write(`# run ${i + 1}/${REPEAT}: krgo ${krgoRuns[i]!.seconds.toFixed(2)} s, skopeo+umoci ${peerRuns[i]!.seconds.toFixed(2)} s\n`);
  }
  const k = median(krgoRuns.map((s) => s.seconds));
  const p = median(peerRuns.map((s) => s.seconds));
  const results = {
    date: new Date().toISOString(),
    machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    image: 'debian bookworm, 3 layers (debootstrap minbase; python3-minimal; deletions), loopback registry',
    repeat: REPEAT,
    eager: {
      krgoPullSeconds: k,
      skopeoCopySeconds: median(skopeoRuns.map((s) => s.seconds)),
      umociUnpackSeconds: median(umociRuns.map((s) => s.seconds)),
      peerSeconds: p,
      ratio: k / p,
      krgoPeakRssMb: median(krgoRuns.map((s) => s.peakRssMb ?? NaN)),
      skopeoPeakRssMb: median(skopeoRuns.map((s) => s.peakRssMb ?? NaN)),
      umociPeakRssMb: median(umociRuns.map((s) => s.peakRssMb ?? NaN)),
    },
  };
  const rows = [
    ['case', 'krgo', 'peer', 'ratio (krgo/peer)'],
    ['eager pull, median s', k.toFixed(2), `${p.toFixed(2)} (skopeo ${results.eager.skopeoCopySeconds.toFixed(2)} + umoci ${results.eager.umociUnpackSeconds.toFixed(2)})`, results.eager.ratio.toFixed(2)],
    ['peak RSS, MB', results.eager.krgoPeakRssMb.toFixed(0), `skopeo ${results.eager.skopeoPeakRssMb.toFixed(0)}, umoci ${results.eager.umociPeakRssMb.toFixed(0)}`, ''],
  ];
  const table = rows.map((r) => `| ${r.join(' | ')} |`);
  table.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  process.stdout.write(`${results.machine}; ${results.date}; ${results.image}; median of ${REPEAT}\n\n${table.join('\n')}\n`);
  await writeFile(join(process.cwd(), 'bench-results.json'), `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await registry.stop();
  await work.remove();
}
