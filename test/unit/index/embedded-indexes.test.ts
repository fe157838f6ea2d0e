import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sha256Of } from '../../../src/digest.js';
import { embeddedContent, embedsIndexes, encodeTaggedList, MAX_LIST_BYTES } from '../../../src/index/index-artifact.js';
import type { Descriptor } from '../../../src/image/manifest.js';

const described = (bytes: Buffer): Descriptor => ({ mediaType: 'application/octet-stream', digest: sha256Of(bytes), size: bytes.length, data: bytes.toString('base64') });

/** Content a descriptor carries itself (OCI `data`): used only when it is what the descriptor names. */
describe('embedded content of descriptors', () => {
  it('is taken when it hashes to the digest and has the size, else left for a fetch', () => {
    const bytes = randomBytes(1000);
    const good = described(bytes);
    assert.deepEqual(embeddedContent(good), bytes);
    assert.equal(embeddedContent({ ...good, data: randomBytes(1000).toString('base64') }), undefined, 'other bytes under the same digest');
    assert.equal(embeddedContent({ ...good, size: 999 }), undefined, 'a size that does not match');
    assert.equal(embeddedContent({ ...good, data: 'not base64 at all!' }), undefined, 'garbage');
    const { data: _none, ...bare } = good;
    assert.equal(embeddedContent(bare), undefined, 'nothing embedded');
  });

  it('indexes are embedded only while what a mount fetches up front stays within 0.5% of the image and 512 KiB', () => {
    assert.equal(embedsIndexes(200_000, 77_600_000), true, 'the bench image: 356 kB on the wire, 0.46%');
    assert.equal(embedsIndexes(300_000, 77_600_000), false, '533 kB: 0.69%');
    assert.equal(embedsIndexes(600 * 1024, 10_000_000_000), false, 'over 512 KiB, however large the image');
    assert.equal(embedsIndexes(1000, 0), false, 'image size unknown');
  });

  it('a tag-keyed list over the size registries must accept drops the oldest entries\' embedded manifests first', () => {
    // Eight platforms' artifacts of ~560 kB each embedded: ~4.5 MB as they are.
    const entries = Array.from({ length: 8 }, () => described(randomBytes(420 * 1024)));
    const list = encodeTaggedList(entries);
    assert.ok(list.length <= MAX_LIST_BYTES, `${list.length} bytes`);
    const kept = (JSON.parse(list.toString('utf8')) as { manifests: Descriptor[] }).manifests;
    assert.deepEqual(kept.map((d) => d.digest), entries.map((d) => d.digest), 'every entry stays listed');
    const embedded = kept.map((d) => typeof d.data === 'string');
    assert.equal(embedded[embedded.length - 1], true, 'the newest keeps its manifest');
    assert.equal(embedded.indexOf(true), embedded.lastIndexOf(false) + 1, 'the ones without are the oldest');
    assert.ok(embedded.includes(false));
    // A small list is left whole.
    const small = entries.slice(0, 2);
    assert.ok((JSON.parse(encodeTaggedList(small).toString('utf8')) as { manifests: Descriptor[] }).manifests.every((d) => typeof d.data === 'string'));
  });
});
