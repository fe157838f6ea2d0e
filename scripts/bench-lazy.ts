/**
 * npm run bench:lazy — the lazy-mount workloads of the bench alone, for quick iteration (see
 * lazy-workloads.ts): each run in a chroot of a mount with an empty cache over the emulated link,
 * with the indexes in the registry, without and with a profile of the same workload, against
 * `skopeo copy` of the image in the same round. BENCH_REPEAT rounds (default 3), medians;
 * BENCH_WORKLOADS=name,name to run some only.
 */
import { startRegistry } from '../test/support/registry.js';
import { startWanEmulator } from '../test/support/wan-emulator.js';
import { debianImageLayout, largeDebianImageLayout } from '../test/support/debian-image.js';
import { tempDir } from '../test/support/temp.js';
import { detachMountsUnder, log } from './bench-support.js';
import { benchWorkloads, LAZY_WORKLOADS, workloadTable, type WorkloadResult } from './lazy-workloads.js';

const REPEAT = Number(process.env['BENCH_REPEAT'] ?? 3);
const DELAY = Number(process.env['BENCH_DELAY_MS'] ?? 25);
const MBIT = Number(process.env['BENCH_MBIT'] ?? 100);
const only = process.env['BENCH_WORKLOADS']?.split(',');
const workloads = LAZY_WORKLOADS.filter((w) => !only || only.includes(w.name));

const registry = await startRegistry();
const wan = await startWanEmulator(registry.host, { delayMs: DELAY, bitsPerSecond: MBIT * 1e6 });
const work = await tempDir('bench-lazy');
try {
  const results: WorkloadResult[] = [];
  for (const image of ['base', 'large'] as const) {
    const some = workloads.filter((w) => w.image === image);
    if (!some.length) continue;
    const layout = image === 'base' ? await debianImageLayout(log) : await largeDebianImageLayout(log);
    results.push(...(await benchWorkloads({ layout, registryHost: registry.host, wan, workDir: work.path, repo: image, workloads: some, repeat: REPEAT })));
  }
  process.stdout.write(`link ${DELAY} ms each way, ${MBIT} Mbit/s; median of ${REPEAT}; ${new Date().toISOString()}\n\n${workloadTable(results)}\n`);
} catch (err) {
  // Said before the clean-up, which may fail too and would hide it.
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  throw err;
} finally {
  await detachMountsUnder(work.path);
  await wan.stop();
  await registry.stop();
  await work.remove();
}
