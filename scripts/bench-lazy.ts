/**
 * npm run bench:lazy — the lazy-mount case of the bench alone, for quick iteration: the Debian
 * image with its indexes pushed, an empty cache, over the emulated link; time until the mount
 * is ready and until `python3 -c` ran in a chroot of it, and bytes fetched, against `skopeo
 * copy` of the whole image in the same run; once with the indexes alone and once with an access
 * profile pushed beside them (recorded by a mount on which python3 ran once). BENCH_REPEAT runs
 * (default 3), medians.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../test/support/registry.js';
import { startWanEmulator } from '../test/support/wan-emulator.js';
import { skopeoPush } from '../test/support/oci-layout.js';
import { debianImageLayout, DEBIAN_TAG } from '../test/support/debian-image.js';
import { tempDir } from '../test/support/temp.js';
import { runOk } from '../test/support/run.js';
import { KRGO_BIN } from '../test/support/krgo-cli.js';
import { lazyRun, log, median, now, pushWithProfile } from './bench-support.js';

const REPEAT = Number(process.env['BENCH_REPEAT'] ?? 3);
const DELAY = Number(process.env['BENCH_DELAY_MS'] ?? 25);
const MBIT = Number(process.env['BENCH_MBIT'] ?? 100);
const PYTHON = ['/usr/bin/python3', '-c', 'print(42)'];

const layout = await debianImageLayout(log);
const registry = await startRegistry();
const wan = await startWanEmulator(registry.host, { delayMs: DELAY, bitsPerSecond: MBIT * 1e6 });
const work = await tempDir('bench-lazy');
try {
  const plain = `${registry.host}/bench/indexed:bookworm`;
  const profiled = `${registry.host}/bench/profiled:bookworm`;
  await skopeoPush(layout, DEBIAN_TAG, plain, 'v2s2');
  await skopeoPush(layout, DEBIAN_TAG, profiled, 'v2s2');
  await runOk(process.execPath, [KRGO_BIN, 'index', '--push', plain, '--cache-dir', join(work.path, 'cache-indexer')]);
  await pushWithProfile(profiled, work.path, 'python', PYTHON);

  type Run = Awaited<ReturnType<typeof lazyRun>>;
  const r = { skopeo: [] as number[], plain: [] as Run[], profiled: [] as Run[] };
  for (let i = 0; i < REPEAT; i++) {
    const dir = join(work.path, `run${i}`);
    await mkdir(dir);
    const t = now();
    await runOk('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${wan.host}/bench/indexed:bookworm`, `oci:${join(dir, 'layout')}:img`]);
    r.skopeo.push(now() - t);
    r.plain.push(await lazyRun(wan, `${wan.host}/bench/indexed:bookworm`, join(dir, 'plain'), PYTHON));
    r.profiled.push(await lazyRun(wan, `${wan.host}/bench/profiled:bookworm`, join(dir, 'profiled'), PYTHON));
    await rm(dir, { recursive: true, force: true });
    const show = (x: Run) => `ready ${x.ready.toFixed(2)} s, python ${x.done.toFixed(2)} s (${(x.done / r.skopeo[i]!).toFixed(2)}), ${(x.bytes / 1e6).toFixed(2)} MB`;
    log(`run ${i + 1}: skopeo copy ${r.skopeo[i]!.toFixed(2)} s; indexes: ${show(r.plain[i]!)}; + profile: ${show(r.profiled[i]!)}`);
  }
  const skopeo = median(r.skopeo);
  for (const [name, runs] of [['indexes', r.plain], ['indexes + profile', r.profiled]] as const) {
    const done = median(runs.map((x) => x.done));
    log(`median, ${name}: ready ${median(runs.map((x) => x.ready)).toFixed(2)} s, python ${done.toFixed(2)} s = ${(done / skopeo).toFixed(3)} of skopeo copy (${skopeo.toFixed(2)} s), ${(median(runs.map((x) => x.bytes)) / 1e6).toFixed(2)} MB`);
  }
} finally {
  await wan.stop();
  await registry.stop();
  await work.remove();
}
