import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { writeLayer } from '../../../src/changes/layer-writer.js';
import type { LayerChange } from '../../../src/changes/layer-diff.js';
import { buildLayerIndex } from '../../../src/index/layer-index.js';
import { ChunkQueue } from '../../../src/util/chunk-queue.js';
import { decodeName, encodeName } from '../../../src/tar/name-bytes.js';
import { tempDir } from '../../support/temp.js';

const record = (type: 'file' | 'dir', size?: number) => ({ type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: '1700000000123456789', ...(size !== undefined ? { size, nlink: 1 } : {}) });

describe('layer writer: one tar/gzip writer for every commit', () => {
  it('the index built while the layer is compressed equals one built from the written blob', async () => {
    const tmp = await tempDir('layer-writer');
    try {
      const root = join(tmp.path, 'root');
      await mkdir(join(root, 'data'), { recursive: true });
      // Incompressible bytes: many deflate blocks, so seek points and windows are really made.
      const big = randomBytes(3 * 1024 * 1024);
      await writeFile(join(root, 'data/big'), big);
      await writeFile(join(root, 'data/small'), 'small\n');
      const changes: LayerChange[] = [
        { kind: 'entry', path: '/data', record: record('dir') },
        { kind: 'entry', path: '/data/big', record: record('file', big.length) },
        { kind: 'entry', path: '/data/small', record: record('file', 6) },
        { kind: 'whiteout', path: '/data/gone' },
      ];
      const layer = await writeLayer(root, changes, join(tmp.path, 'blobs'), { indexed: true });
      const blob = await readFile(layer.path);
      const rebuilt = await buildLayerIndex(Readable.from([blob]), layer.digest, layer.size);
      assert.ok(layer.index && layer.index.checkpoints.length > 10, 'seek points were made');
      assert.deepEqual(layer.index, rebuilt);
      assert.deepEqual(layer.index.entries.map((e) => e.path), ['data/', 'data/big', 'data/small', 'data/.wh.gone']);
    } finally {
      await tmp.remove();
    }
  });

  it('a file whose name is not UTF-8 is read by its very bytes and named by them in the layer', async () => {
    const tmp = await tempDir('layer-writer-names');
    try {
      const root = join(tmp.path, 'root');
      await mkdir(root, { recursive: true });
      const nameBytes = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "caf\xe9": Latin-1, not UTF-8
      await writeFile(Buffer.concat([Buffer.from(`${root}/`), nameBytes]), 'latin-1 named\n');
      const path = `/${decodeName(nameBytes)}`;
      const layer = await writeLayer(root, [{ kind: 'entry', path, record: record('file', 14) }], join(tmp.path, 'blobs'), { indexed: true });
      const entry = layer.index!.entries[0]!;
      assert.deepEqual(encodeName(entry.path), nameBytes);
      assert.equal(entry.size, 14);
    } finally {
      await tmp.remove();
    }
  });

  it('the queue between writer and indexer holds the writer back, and a failed reader releases it', async () => {
    const queue = new ChunkQueue(10);
    let pushed = 0;
    const producer = (async () => {
      for (let i = 0; i < 5; i++) {
        await queue.push(Buffer.alloc(8));
        pushed++;
      }
      queue.end();
    })();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pushed, 1, 'the second chunk waits: 16 bytes would be above the mark');
    let read = 0;
    for await (const chunk of queue) read += chunk.length;
    await producer;
    assert.equal(read, 40);
    const failing = new ChunkQueue(1);
    const stuck = failing.push(Buffer.alloc(4));
    failing.fail(new Error('reader failed'));
    await stuck;
    await assert.rejects(async () => {
      for await (const _ of failing) void _;
    }, /reader failed/);
  });
});
