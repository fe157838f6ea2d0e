import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startBusyboxRegistry, type BusyboxSetup } from '../support/busybox-registry.js';
import { startWanEmulator, type WanEmulator } from '../support/wan-emulator.js';
import { KRGO_BIN } from '../support/krgo-cli.js';
import { unmount } from '../support/mounts.js';
import { isMounted } from '../../src/mount/mount-table.js';

/**
 * The kernel mount is made while the manifest is on the wire. An image whose layers must be
 * scanned first (no index anywhere) must not leave that mount up, its calls hanging, for the
 * seconds a scan takes: it goes, and the tree is mounted once built.
 */
describe('a mount made while the manifest is on the wire', () => {
  let setup: BusyboxSetup;
  let slow: WanEmulator;

  before(async () => {
    setup = await startBusyboxRegistry('early-mount');
    // Slow enough that the scan of the busybox layer takes a second or more.
    slow = await startWanEmulator(setup.registry.host, { delayMs: 5, bitsPerSecond: 4_000_000 });
  });

  after(async () => {
    await slow?.stop();
    await setup?.stop();
  });

  it('a layer to scan: the early mount goes while it is scanned, and the tree is mounted for ready', async () => {
    const mountpoint = join(setup.work, 'mnt');
    const cacheDir = join(setup.work, 'cache');
    const trace = join(setup.work, 'mount.phases');
    await mkdir(mountpoint, { recursive: true });
    const child = spawn(process.execPath, [KRGO_BIN, 'mount', `${slow.host}/busybox:latest`, mountpoint, '--cache-dir', cacheDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KRGO_TRACE_PHASES: trace } });
    let output = '';
    const mountedDuringScan: boolean[] = [];
    let poll: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          output += d.toString();
          // From the moment the scan is announced until ready: is the mountpoint a mount?
          if (!poll && output.includes(': indexing ')) poll = setInterval(() => mountedDuringScan.push(isMounted(mountpoint)), 20);
          if (output.includes('ready: ')) resolve();
        });
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.once('exit', (code) => reject(new Error(`mount exited ${code}: ${output}`)));
      });
      clearInterval(poll);
      const seen = [...mountedDuringScan];
      assert.ok(seen.length >= 10, `the scan lasted long enough to look (${seen.length} looks):\n${output}`);
      // Up again only at the end, for ready: most of the scan went by with nothing mounted.
      assert.ok(seen.filter((up) => !up).length >= seen.length / 2, `mounted at these looks during the scan: ${seen.join(' ')}\n${output}`);
      assert.ok(isMounted(mountpoint), 'mounted once ready');
      assert.ok((await stat(join(mountpoint, 'bin', 'busybox'))).size > 0);
      const steps = (await readFile(trace, 'utf8')).trim().split('\n').map((l) => l.slice(l.indexOf(' ') + 1));
      const order = ['manifest asked', 'early kernel mount asked', 'manifest resolved', 'early kernel mount dropped', 'tree built', 'kernel mount up', 'ready'];
      assert.deepEqual(steps.filter((s) => order.includes(s)), order, steps.join('\n'));
    } finally {
      clearInterval(poll);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await unmount(mountpoint, cacheDir);
    }
  });
});
