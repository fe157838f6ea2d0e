/**
 * npm run demo — the headline on a local registry: an image made of Debian's busybox-static is
 * mounted lazily, a program runs in the mount (krgo run sets up /dev, /proc, /sys), `krgo status`
 * shows how little was fetched, and the mount goes away; then the same image is pulled eagerly.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../test/support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../test/support/oci-layout.js';
import { busyboxImage } from '../test/support/fixtures.js';
import { buildTar } from '../src/tar/tar-writer.js';
import { tempDir } from '../test/support/temp.js';
import { KRGO_COMMAND } from '../test/support/krgo-cli.js';

function show(cmd: string, args: string[]): Promise<number> {
  process.stdout.write(`\n$ ${[cmd === process.execPath ? 'krgo' : cmd, ...(cmd === process.execPath ? args.slice(1) : args)].join(' ')}\n`);
  return new Promise((resolve) => spawn(cmd, args, { stdio: 'inherit' }).once('exit', (code) => resolve(code ?? 1)));
}
const krgo = (...args: string[]) => show(KRGO_COMMAND, [...args]);

const registry = await startRegistry();
const work = await tempDir('demo');
let code = 1;
try {
  const image = busyboxImage();
  // Mount points for what krgo run sets up (/dev, /proc, /sys), as real images have them.
  image.layers.push({ tar: buildTar(['dev', 'proc', 'sys'].map((path) => ({ path, type: 'dir' as const, mode: 0o755, mtime: 1_700_000_000 }))) });
  const layout = new OciLayoutWriter(join(work.path, 'layout'));
  await layout.addImage('busybox', image);
  await layout.finish();
  const ref = `${registry.host}/demo/busybox:latest`;
  await skopeoPush(join(work.path, 'layout'), 'busybox', ref, 'v2s2');
  process.stdout.write(`registry on ${registry.host}, seeded with ${ref}\n`);
  const cache = join(work.path, 'cache');
  const mnt = join(work.path, 'mnt');
  await mkdir(mnt);
  code = await krgo('mount', '-d', ref, mnt, '--cache-dir', cache);
  if (code === 0) {
    code = await krgo('run', mnt, '--', '/bin/sh', '-c', 'cat /etc/motd; echo "busybox on $(uname -s), uid $(id -u)" > /dev/stderr; ls /proc | head -2');
    await new Promise((r) => setTimeout(r, 1200)); // the mount publishes its counters every second
    await krgo('status', mnt);
    await krgo('mounts');
    await krgo('umount', mnt);
  }
  if (code === 0) code = await krgo('pull', ref, '-r', join(work.path, 'busybox'), '--cache-dir', cache);
} finally {
  await registry.stop();
  await work.remove();
}
process.exit(code);
