import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest } from '../../../src/image/manifest.js';
import { selectPlatform, parsePlatform } from '../../../src/image/platform.js';
import { MediaType } from '../../../src/image/media-types.js';
import type { Digest } from '../../../src/digest.js';

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;

describe('manifests and platforms', () => {
  it('refuses schema 1 with a message that says what to do', () => {
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] })), MediaType.dockerSchema1Signed), /schema 1 .*push it again/);
  });
  it('parses an index and a manifest, validating digests', () => {
    const index = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, digest: d('a'), size: 10, platform: { os: 'linux', architecture: 'amd64' } }] })), MediaType.ociIndex);
    assert.equal(index.kind, 'index');
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: 'sha256:../../etc', size: 1 }, layers: [] })), undefined), { code: 'BAD_DIGEST' });
  });
  it('chooses platforms with arm variants normalized', () => {
    const entries = [
      { mediaType: MediaType.ociManifest, digest: d('a'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaType.ociManifest, digest: d('b'), size: 1, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: MediaType.ociManifest, digest: d('c'), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      { mediaType: MediaType.ociManifest, digest: d('e'), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    ];
    assert.equal(selectPlatform(entries, parsePlatform('linux/arm64/v8')).digest, d('b'));
    assert.equal(selectPlatform(entries, parsePlatform('linux/arm')).digest, d('e'));
    assert.equal(selectPlatform(entries, parsePlatform('linux/arm/v6')).digest, d('c'));
    assert.throws(() => selectPlatform(entries, parsePlatform('windows/amd64')), { code: 'NO_MATCHING_PLATFORM' });
    assert.throws(() => parsePlatform('linux'), { code: 'USAGE' });
  });
});
