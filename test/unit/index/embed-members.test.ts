import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sha256Of } from '../../../src/digest.js';
import { embeddedContent, type Descriptor, type ImageManifest } from '../../../src/image/manifest.js';
import { MediaType } from '../../../src/image/media-types.js';
import { ACCESS_PROFILE_MEDIA_TYPE, embedMembers, LAYER_INDEX_MEDIA_TYPE } from '../../../src/index/index-artifact.js';

const KiB = 1024;
const blob = (mediaType: string, size: number) => {
  const bytes = randomBytes(size);
  return { bytes, descriptor: { mediaType, digest: sha256Of(bytes), size } as Descriptor };
};

/**
 * What an index artifact embeds for a mount (OCI descriptor `data`), so that the list asked for
 * with the manifest is all a mount needs to be ready: the config, the profile, the indexes, in
 * that order, within a budget that keeps the list far below registries' manifest limits.
 */
describe('members an index artifact embeds', () => {
  const config = blob(MediaType.ociConfig, 2 * KiB);
  const profile = blob(ACCESS_PROFILE_MEDIA_TYPE, 10 * KiB);
  const base = blob(LAYER_INDEX_MEDIA_TYPE, 300 * KiB);
  const upper = blob(LAYER_INDEX_MEDIA_TYPE, 300 * KiB);
  const windows = blob('application/vnd.krgo.layer-index-windows.v1', 40 * KiB);
  const manifest = { kind: 'manifest', mediaType: MediaType.ociManifest, config: config.descriptor, layers: [] } as ImageManifest;
  const image = { manifest, manifestDigest: sha256Of('m'), manifestBytes: Buffer.from('m'), configBytes: config.bytes };
  const contents = new Map([base, upper, profile].map((b) => [b.descriptor.digest as string, b.bytes]));

  it('embeds the config, then the profile, then indexes in order, until the budget is spent; the rest stay fetched by digest', () => {
    const members = embedMembers([base.descriptor, windows.descriptor, upper.descriptor, profile.descriptor], contents, image);
    assert.deepEqual(
      members.map((m) => m.digest),
      [base, windows, upper, profile, config].map((b) => b.descriptor.digest),
      'the order kept; the config added last',
    );
    const embedded = members.filter((m) => m.data !== undefined).map((m) => m.digest);
    assert.deepEqual(embedded, [base, profile, config].map((b) => b.descriptor.digest), 'the second index does not fit beside the first');
    for (const member of members.filter((m) => m.data !== undefined)) assert.ok(embeddedContent(member), `${member.digest} embeds its own bytes`);
  });

  it('lists no config whose bytes it does not have, and embeds nothing it has no bytes of', () => {
    const { configBytes: _none, ...withoutConfig } = image;
    const members = embedMembers([windows.descriptor, profile.descriptor], contents, withoutConfig);
    assert.deepEqual(members.map((m) => [m.digest, m.data !== undefined]), [
      [windows.descriptor.digest, false],
      [profile.descriptor.digest, true],
    ]);
  });
});
