import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { processesRootedAt } from '../../../src/hostfs/rooted-processes.js';
import { busyboxBinary } from '../../support/fixtures.js';
import { tempDir } from '../../support/temp.js';
import { writeFile, chmod } from 'node:fs/promises';

describe('processes rooted at a directory', () => {
  it('finds a process chrooted into the directory, with its command line, and no other', async () => {
    const dir = await tempDir('rooted');
    try {
      await mkdir(join(dir.path, 'bin'), { recursive: true });
      await writeFile(join(dir.path, 'bin', 'busybox'), busyboxBinary());
      await chmod(join(dir.path, 'bin', 'busybox'), 0o755);
      const child = spawn('chroot', [dir.path, '/bin/busybox', 'sleep', '30'], { stdio: 'ignore' });
      try {
        let found: Awaited<ReturnType<typeof processesRootedAt>> = [];
        for (let i = 0; i < 100 && !found.length; i++) {
          found = (await processesRootedAt(dir.path)).filter((p) => p.argv.includes('sleep'));
          if (!found.length) await new Promise((r) => setTimeout(r, 20));
        }
        assert.deepEqual(found.map((p) => p.argv), [['/bin/busybox', 'sleep', '30']]);
        assert.equal(found[0]!.pid, child.pid);
        assert.ok(!(await processesRootedAt(dir.path)).some((p) => p.pid === process.pid));
        assert.deepEqual((await processesRootedAt(join(dir.path, 'bin'))).filter((p) => p.pid === child.pid), [], 'another directory: not found');
      } finally {
        child.kill('SIGKILL');
      }
    } finally {
      await dir.remove();
    }
  });
});
