import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskSpanStore } from '../../../src/cache/disk-span-store.js';
import { sha256Of } from '../../../src/digest.js';
import { tempDir } from '../../support/temp.js';

const LAYER = sha256Of(Buffer.from('a layer'));
const onDisk = (dir: string) => readdir(join(dir, LAYER.slice(7))).then((names) => names.filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b)), () => [] as string[]);

describe('disk span store', () => {
  it('writes spans once the puts pause, serving them from memory until then', async () => {
    const tmp = await tempDir('span-store');
    try {
      const quietMs = 300;
      const store = new DiskSpanStore(tmp.path, undefined, quietMs);
      const written: number[] = [];
      const puts = Array.from({ length: 5 }, (_, span) => store.put(LAYER, span, 'b', Buffer.alloc(1000, span)).then(() => written.push(span)));
      const lastPut = performance.now();
      assert.deepEqual(await onDisk(tmp.path), [], 'nothing written while the puts come');
      assert.ok((await store.get(LAYER, 3, 'b'))?.equals(Buffer.alloc(1000, 3)), 'a waiting span is served');
      assert.equal(await store.get(LAYER, 3, 'other binding'), undefined, 'only for its own binding');
      await Promise.all(puts);
      assert.ok(performance.now() - lastPut >= quietMs - 5, 'written after the pause');
      assert.deepEqual(await onDisk(tmp.path), ['0', '1', '2', '3', '4']);
      assert.deepEqual(written, [0, 1, 2, 3, 4], 'each put resolves once its span is on disk, in order');
      const again = new DiskSpanStore(tmp.path);
      assert.ok((await again.get(LAYER, 4, 'b'))?.equals(Buffer.alloc(1000, 4)), 'sealed and read back by another store');
    } finally {
      await tmp.remove();
    }
  });

  it('waits for a pause in the reads too, but not past its bound', async () => {
    const tmp = await tempDir('span-store');
    try {
      const store = new DiskSpanStore(tmp.path, undefined, 150, 1200);
      const put = store.put(LAYER, 0, 'b', Buffer.alloc(1000, 7));
      const start = performance.now();
      // Reads every 50 ms: never the 150 ms pause.
      const reading = setInterval(() => store.busy(), 50);
      try {
        await new Promise((r) => setTimeout(r, 600));
        assert.deepEqual(await onDisk(tmp.path), [], 'not written while reads keep coming');
        await put;
        const waited = performance.now() - start;
        assert.ok(waited >= 1200 && waited < 1200 + 150 + 200, `written once the bound passed (${waited.toFixed(0)} ms)`);
        assert.deepEqual(await onDisk(tmp.path), ['0']);
      } finally {
        clearInterval(reading);
      }
      store.busy();
      assert.deepEqual(await onDisk(tmp.path), ['0'], 'busy with nothing waiting writes nothing');
    } finally {
      await tmp.remove();
    }
  });

  it('writes the oldest at once when too many bytes wait, and everything on flush', async () => {
    const tmp = await tempDir('span-store');
    try {
      // No pause comes within the test: only the bound and flush write.
      const store = new DiskSpanStore(tmp.path, undefined, 60_000);
      const big = 6 * 1024 * 1024;
      // 6 × 6 MiB: past the 32 MiB that may wait, the oldest 20 MiB and more go at once.
      const puts = Array.from({ length: 6 }, (_, span) => store.put(LAYER, span, 'b', Buffer.alloc(big, span)));
      await puts[3];
      assert.deepEqual(await onDisk(tmp.path), ['0', '1', '2', '3'], 'written before any pause');
      await store.flush();
      assert.deepEqual(await onDisk(tmp.path), ['0', '1', '2', '3', '4', '5']);
      await Promise.all(puts);
    } finally {
      await tmp.remove();
    }
  });
});
