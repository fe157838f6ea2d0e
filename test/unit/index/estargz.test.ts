import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { readStargzIndex, TOC_DIGEST_ANNOTATION } from '../../../src/index/estargz.js';
import { decodeIndex, encodeIndex } from '../../../src/index/index-codec.js';
import { MergedTree } from '../../../src/vfs/merged-tree.js';
import { LayerReader, SpanCache } from '../../../src/vfs/layer-reader.js';
import { LayerApplier } from '../../../src/materialize/layer-applier.js';
import { sha256Of, type Digest } from '../../../src/digest.js';
import { MediaType } from '../../../src/image/media-types.js';
import type { RangeSource } from '../../../src/blob/range-source.js';
import { buildEstargz } from '../../support/estargz-writer.js';
import { estargzEntries } from '../../support/fixtures.js';
import { diffTrees, snapshotTree } from '../../support/tree-snapshot.js';
import { recordsOfMergedTree } from '../../support/merged-tree-records.js';
import { tempDir } from '../../support/temp.js';

describe('eStargz', () => {
  const { blob, tocDigest } = buildEstargz(estargzEntries(), 32 * 1024);
  const layer = { mediaType: MediaType.ociLayerGzip, digest: sha256Of(blob), size: blob.length, annotations: { [TOC_DIGEST_ANNOTATION]: tocDigest } };
  const requests: [number, number][] = [];
  const read = async (start: number, end: number) => {
    requests.push([start, end]);
    return blob.subarray(start, end);
  };

  it('is indexed from its footer and TOC alone; the tree read by chunk equals the disk applier on the same blob', async () => {
    requests.length = 0;
    const index = await readStargzIndex(layer, read);
    assert.equal(requests.length, 2, 'footer and TOC: two range requests');
    assert.ok(requests.every(([s, e]) => e - s < blob.length / 2), 'no pass over the layer');
    assert.ok(index.entries.some((e) => (e.chunks?.length ?? 0) > 3), 'a large file comes in several chunks');
    const { blob: _noWindows, ...windows } = index.windows;
    assert.deepEqual(decodeIndex(encodeIndex(index)), { ...index, windows });

    const source: RangeSource = { read: async (_d: Digest, s: number, e: number) => blob.subarray(s, e) };
    const reader = new LayerReader(index, source, new SpanCache());
    const tree = new MergedTree();
    await tree.addLayerEntries(index.entries);
    const chunkReads: Promise<Buffer>[] = [];
    const files = new Map<string, Buffer>();
    for (const [path, inode] of tree.walk()) {
      const plan = tree.readPlan(inode, 0, inode.size);
      if (plan?.chunks) chunkReads.push(reader.readChunks(plan.chunks, 0, plan.length).then((b) => (files.set(path, b), b)));
    }
    await Promise.all(chunkReads);
    const tmp = await tempDir('stargz');
    try {
      const root = join(tmp.path, 'root');
      await mkdir(root);
      await new LayerApplier(root, { warn: () => undefined }).applyLayer(Readable.from([gunzipSync(blob)]));
      const lazy = recordsOfMergedTree(tree, (span) => {
        const path = [...tree.walk()].find(([, i]) => i.content?.chunks === span.chunks)?.[0];
        return files.get(path!)!.subarray(span.offset, span.offset + span.length);
      });
      assert.deepEqual(diffTrees(await snapshotTree(root), lazy), []);
      assert.ok(lazy.has('/stargz.index.json'), 'the TOC is a file of the layer, as any tar reader sees it');
    } finally {
      await tmp.remove();
    }
  });

  it('refuses a TOC that does not match the manifest annotation, and a chunk that does not match its digest', async () => {
    await assert.rejects(readStargzIndex({ ...layer, annotations: { [TOC_DIGEST_ANNOTATION]: `sha256:${'0'.repeat(64)}` } }, read), { code: 'DIGEST_MISMATCH' });
    const index = await readStargzIndex(layer, read);
    const big = index.entries.find((e) => (e.chunks?.length ?? 0) > 1)!;
    const chunk = big.chunks![1]!;
    const forged = { ...chunk, digest: `sha256:${'1'.repeat(64)}` };
    const reader = new LayerReader(index, { read: async (_d, s, e) => blob.subarray(s, e) }, new SpanCache());
    await assert.rejects(reader.readChunks([forged], chunk.fileOffset, 10), { code: 'DIGEST_MISMATCH' });
  });
});
