/**
 * npm run bench:robust — what hostile or heavy inputs cost: peak RSS of the krgo process and the
 * high-water mark of its cache on disk, for (1) a gzip bomb (a 1 GiB file of zeros in a layer of
 * about 1 MB) read through a mount, (2) a directory of 200 000 files pulled and mounted, (3) 16
 * readers for 20 s on a mount of the Debian image, every byte checked against a pull. Loopback,
 * no emulated link: this measures bounds, not speed.
 */
import { readFile } from 'node:fs/promises';
import { dirUsage } from '../src/util/dir-usage.js';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startRegistry } from '../test/support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../test/support/oci-layout.js';
import { debianImageLayout, DEBIAN_TAG } from '../test/support/debian-image.js';
import { buildTar, type WriteEntry } from '../src/tar/tar-writer.js';
import { tempDir } from '../test/support/temp.js';
import { runOk } from '../test/support/run.js';
import { KRGO_COMMAND } from '../test/support/krgo-cli.js';
import { log, mountForeground, now, timed } from './bench-support.js';

const T = 1_700_000_000;

const duBytes = async (dir: string): Promise<number> => (await dirUsage(dir)).bytes;

/** Samples the disk use of `dir` every 250 ms until stopped; returns the high-water mark. */
function diskWatcher(dir: string) {
  let high = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      high = Math.max(high, await duBytes(dir));
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return async () => {
    running = false;
    await loop;
    return Math.max(high, await duBytes(dir));
  };
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const results: Record<string, string> = {};
const registry = await startRegistry();
const work = await tempDir('bench-robust');
try {
  // 1. A gzip bomb: 1 GiB of zeros, read whole through a mount (the case was a 4 KiB read).
  {
    const zeros = join(work.path, 'zeros');
    await runOk('truncate', ['-s', '1G', zeros]);
    await runOk('sh', ['-c', `tar --owner=0 --group=0 -C ${work.path} -cf ${work.path}/bomb.tar zeros && rm ${zeros}`]);
    const layout = new OciLayoutWriter(join(work.path, 'layout-bomb'));
    await layout.addImage('bomb', { layers: [{ tar: await readFile(join(work.path, 'bomb.tar')) }] });
    await layout.finish();
    await skopeoPush(join(work.path, 'layout-bomb'), 'bomb', `${registry.host}/bench/bomb:1`, 'oci');
    const layerBytes = await duBytes(join(work.path, 'layout-bomb', 'blobs'));
    const cache = join(work.path, 'cache-bomb');
    const mount = await mountForeground(`${registry.host}/bench/bomb:1`, join(work.path, 'mnt-bomb'), cache);
    const disk = diskWatcher(cache);
    const t = now();
    const first = await runOk('sh', ['-c', `dd if=${join(work.path, 'mnt-bomb', 'zeros')} bs=4096 count=1 status=none | wc -c`]);
    const firstRead = now() - t;
    await runOk('sh', ['-c', `cat ${join(work.path, 'mnt-bomb', 'zeros')} > /dev/null`]);
    const whole = now() - t;
    const rss = await mount.peakRssMb();
    await mount.stop();
    results['gzip bomb (1 GiB of zeros, layer and windows ' + mb(layerBytes) + ')'] =
      `4 KiB read ${first.stdout.trim()} bytes in ${firstRead.toFixed(2)} s; whole file read in ${whole.toFixed(1)} s; mount peak RSS ${rss.toFixed(0)} MB; cache high-water ${mb(await disk())} (span cache bound 2 GiB)`;
    log(Object.entries(results).at(-1)!.join(': '));
  }

  // 2. One directory of 200 000 small files: pull, then mount and list it.
  {
    const entries: WriteEntry[] = [{ path: 'many', type: 'dir', mode: 0o755, mtime: T }];
    for (let i = 0; i < 200_000; i++) entries.push({ path: `many/f${i}`, type: 'file', mode: 0o644, mtime: T, content: `${i}\n` });
    const layout = new OciLayoutWriter(join(work.path, 'layout-many'));
    await layout.addImage('many', { layers: [{ tar: buildTar(entries) }] });
    await layout.finish();
    await skopeoPush(join(work.path, 'layout-many'), 'many', `${registry.host}/bench/many:1`, 'oci');
    const cache = join(work.path, 'cache-many');
    const disk = diskWatcher(cache);
    const pull = await timed(KRGO_COMMAND, ['pull', '-q', `${registry.host}/bench/many:1`, '-r', join(work.path, 'many-rootfs'), '--cache-dir', cache]);
    const mount = await mountForeground(`${registry.host}/bench/many:1`, join(work.path, 'mnt-many'), join(work.path, 'cache-many-mount'));
    const t = now();
    const listed = await runOk('sh', ['-c', `ls -f ${join(work.path, 'mnt-many', 'many')} | wc -l`]);
    const list = now() - t;
    const rss = await mount.peakRssMb();
    await mount.stop();
    results['200 000 files in one directory'] =
      `pull ${pull.seconds.toFixed(1)} s, peak RSS ${pull.rssMb.toFixed(0)} MB, cache high-water ${mb(await disk())}; mount from an empty cache: ready ${mount.readySeconds.toFixed(1)} s, ls -f of ${Number(listed.stdout) - 2} names ${list.toFixed(2)} s, mount peak RSS ${rss.toFixed(0)} MB`;
    log(Object.entries(results).at(-1)!.join(': '));
  }

  // 3. 16 readers for 20 s on a lazy mount of Debian, each byte checked against a pull.
  {
    const image = `${registry.host}/bench/debian:bookworm`;
    await skopeoPush(await debianImageLayout(log), DEBIAN_TAG, image, 'v2s2');
    const reference = join(work.path, 'debian-rootfs');
    await runOk(KRGO_COMMAND, ['pull', '-q', image, '-r', reference, '--cache-dir', join(work.path, 'cache-debian-pull')]);
    const files = (await runOk('find', [join(reference, 'usr'), '-type', 'f', '-size', '-4M'])).stdout.trim().split('\n').map((p) => p.slice(reference.length));
    const cache = join(work.path, 'cache-debian-mount');
    const mp = join(work.path, 'mnt-debian');
    const mount = await mountForeground(image, mp, cache);
    const disk = diskWatcher(cache);
    const deadline = Date.now() + 20_000;
    let reads = 0;
    let wrong = 0;
    const worker = async (w: number) => {
      let seed = w * 7919 + 1;
      while (Date.now() < deadline) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const path = files[seed % files.length]!;
        const [a, b] = await Promise.all([readFile(mp + path), readFile(reference + path)]);
        reads++;
        if (!createHash('sha256').update(a).digest().equals(createHash('sha256').update(b).digest())) wrong++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    const rss = await mount.peakRssMb();
    await mount.stop();
    results['16 readers × 20 s on a lazy Debian mount'] = `${reads} whole-file reads, ${wrong} wrong; mount peak RSS ${rss.toFixed(0)} MB; cache high-water ${mb(await disk())}`;
    log(Object.entries(results).at(-1)!.join(': '));
  }
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  await registry.stop();
  await work.remove();
}
