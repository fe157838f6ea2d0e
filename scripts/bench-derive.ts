/**
 * Change an image and push the result, krgo against the eager peer flow, over the emulated link:
 * - krgo: `mount -d -w` (indexes in the registry, empty cache), the change in a chroot of the
 *   mount, `commit`, `push` (the base layers stay in the registry; the index artifact goes along);
 * - peer: `skopeo copy` to an OCI layout, `umoci unpack`, the same change in a chroot of the
 *   rootfs, `umoci repack`, `skopeo copy` back to the registry.
 * Both push to the base's repository under a new tag, so both find the base layers there (HEAD)
 * and send only the new one. Time from start to pushed, and bytes the registry sent (the link's
 * downstream; the emulator paces that direction only, and both upload one small layer).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { WanEmulator } from '../test/support/wan-emulator.js';
import { runOk } from '../test/support/run.js';
import { KRGO_COMMAND } from '../test/support/krgo-cli.js';
import { log, median, now, runInRoot } from './bench-support.js';

/** A change a user would make: a user added, a config edited, a tree removed, 5 MB of new data. */
const CHANGE = `set -e
echo "builder:x:1500:1500::/home/builder:/bin/sh" >> /etc/passwd
sed -i 's/^#*\\s*alias ll=.*/alias ll="ls -l"/' /etc/skel/.bashrc
rm -r /usr/share/perl5/Debconf
mkdir -p /opt/app && yes 'derived image data' | head -c 5000000 > /opt/app/data
`;

export interface DeriveResult {
  krgo: { seconds: number; bytes: number };
  peer: { seconds: number; bytes: number };
  timeRatio: number;
  bytesRatio: number;
}

async function krgoFlow(wan: WanEmulator, image: string, target: string, dir: string): Promise<{ seconds: number; bytes: number; steps: string }> {
  const mnt = join(dir, 'mnt');
  const cache = join(dir, 'cache');
  await mkdir(mnt, { recursive: true });
  wan.reset();
  const t = now();
  const steps: string[] = [];
  let last = t;
  const step = (name: string) => {
    const at = now();
    steps.push(`${name} ${(at - last).toFixed(2)}`);
    last = at;
  };
  await runOk(KRGO_COMMAND, ['mount', '-d', '-w', '-q', image, mnt, '--cache-dir', cache]);
  step('mount');
  try {
    await runInRoot(mnt, ['/bin/sh', '-c', CHANGE]);
    step('change');
    await runOk(KRGO_COMMAND, ['commit', mnt, '-m', 'bench change', '-q']);
    step('commit');
    await runOk(KRGO_COMMAND, ['push', target, '-r', mnt, '-q']);
    step('push');
    return { seconds: now() - t, bytes: wan.bytesToClient, steps: steps.join(', ') };
  } finally {
    await runOk(KRGO_COMMAND, ['umount', mnt]);
  }
}

async function peerFlow(wan: WanEmulator, image: string, target: string, dir: string): Promise<{ seconds: number; bytes: number }> {
  const layout = `${join(dir, 'layout')}:img`;
  const bundle = join(dir, 'bundle');
  await mkdir(dir, { recursive: true });
  wan.reset();
  const t = now();
  await runOk('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${image}`, `oci:${layout}`]);
  await runOk('umoci', ['unpack', '--image', layout, bundle]);
  await runOk('chroot', [join(bundle, 'rootfs'), '/bin/sh', '-c', CHANGE]);
  await runOk('umoci', ['repack', '--image', layout, bundle]);
  await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}`, `docker://${target}`]);
  return { seconds: now() - t, bytes: wan.bytesToClient };
}

/** `image` must have its indexes in the registry (krgo index --push); targets are tags of its repository. */
export async function benchDerive(wan: WanEmulator, image: string, workDir: string, repeat: number): Promise<DeriveResult> {
  const repository = image.slice(0, image.lastIndexOf(':'));
  const r = { krgo: [] as number[], krgoBytes: [] as number[], peer: [] as number[], peerBytes: [] as number[] };
  for (let i = 0; i < repeat; i++) {
    const dir = join(workDir, `derive${i}`);
    const k = await krgoFlow(wan, image, `${repository}:derived-krgo-${i}`, join(dir, 'krgo'));
    const p = await peerFlow(wan, image, `${repository}:derived-peer-${i}`, join(dir, 'peer'));
    r.krgo.push(k.seconds);
    r.krgoBytes.push(k.bytes);
    r.peer.push(p.seconds);
    r.peerBytes.push(p.bytes);
    await rm(dir, { recursive: true, force: true });
    log(`derive run ${i + 1}/${repeat}: krgo mount -w + change + commit + push ${k.seconds.toFixed(2)} s (${k.steps}), ${(k.bytes / 1e6).toFixed(1)} MB; skopeo + umoci unpack + change + repack + skopeo ${p.seconds.toFixed(2)} s, ${(p.bytes / 1e6).toFixed(1)} MB`);
  }
  const m = median;
  return {
    krgo: { seconds: m(r.krgo), bytes: m(r.krgoBytes) },
    peer: { seconds: m(r.peer), bytes: m(r.peerBytes) },
    timeRatio: m(r.krgo) / m(r.peer),
    bytesRatio: m(r.krgoBytes) / m(r.peerBytes),
  };
}

// npm run bench:derive: this row alone, on the bench's base image.
if (import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1] ?? '').href) {
  const [{ startRegistry }, { startWanEmulator }, { skopeoPush }, { debianImageLayout, DEBIAN_TAG }, { tempDir }, { detachMountsUnder }] = await Promise.all([
    import('../test/support/registry.js'),
    import('../test/support/wan-emulator.js'),
    import('../test/support/oci-layout.js'),
    import('../test/support/debian-image.js'),
    import('../test/support/temp.js'),
    import('./bench-support.js'),
  ]);
  const registry = await startRegistry();
  const wan = await startWanEmulator(registry.host, { delayMs: Number(process.env['BENCH_DELAY_MS'] ?? 25), bitsPerSecond: Number(process.env['BENCH_MBIT'] ?? 100) * 1e6 });
  const work = await tempDir('bench-derive');
  try {
    await skopeoPush(await debianImageLayout(log), DEBIAN_TAG, `${registry.host}/bench/derive:bookworm`, 'v2s2');
    await runOk(KRGO_COMMAND, ['index', '--push', `${registry.host}/bench/derive:bookworm`, '--cache-dir', join(work.path, 'cache-indexer')]);
    const result = await benchDerive(wan, `${wan.host}/bench/derive:bookworm`, work.path, Number(process.env['BENCH_REPEAT'] ?? 3));
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await detachMountsUnder(work.path);
    await wan.stop();
    await registry.stop();
    await work.remove();
  }
}
