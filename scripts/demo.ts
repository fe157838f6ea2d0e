/**
 * The main job on an embedded default: a local registry on loopback, seeded with a small real
 * image (Debian's busybox-static), which krgo pulls; then a shell runs in the result.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startRegistry } from '../test/support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../test/support/oci-layout.js';
import { busyboxImage } from '../test/support/fixtures.js';
import { tempDir } from '../test/support/temp.js';
import { KRGO_BIN } from '../test/support/krgo-cli.js';

function show(cmd: string, args: string[]): Promise<number> {
  process.stdout.write(`\n$ ${[cmd === process.execPath ? 'krgo' : cmd, ...(cmd === process.execPath ? args.slice(1) : args)].join(' ')}\n`);
  return new Promise((resolve) => spawn(cmd, args, { stdio: 'inherit' }).once('exit', (code) => resolve(code ?? 1)));
}

const registry = await startRegistry();
const work = await tempDir('demo');
let code = 1;
try {
  const layout = new OciLayoutWriter(join(work.path, 'layout'));
  await layout.addImage('busybox', busyboxImage());
  await layout.finish();
  const image = `${registry.host}/demo/busybox:latest`;
  await skopeoPush(join(work.path, 'layout'), 'busybox', image, 'v2s2');
  process.stdout.write(`registry on ${registry.host}, seeded with ${image}\n`);
  const rootfs = join(work.path, 'busybox');
  code = await show(process.execPath, [KRGO_BIN, 'pull', image, '-r', rootfs, '--cache-dir', join(work.path, 'cache')]);
  if (code === 0) code = await show('chroot', [rootfs, '/bin/sh', '-c', 'cat /etc/motd; echo "running $(uname -s) busybox as uid $(id -u)"; ls /bin | head -3']);
} finally {
  await registry.stop();
  await work.remove();
}
process.exit(code);
