import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sha256Of } from '../../../src/digest.js';
import { embeddedContent } from '../../../src/image/manifest.js';
import type { Descriptor } from '../../../src/image/manifest.js';

const described = (bytes: Buffer): Descriptor => ({ mediaType: 'application/octet-stream', digest: sha256Of(bytes), size: bytes.length, data: bytes.toString('base64') });

/** Content a descriptor carries itself (OCI `data`, as the tag lists embed artifact manifests): used only when it is what the descriptor names. */
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
});
