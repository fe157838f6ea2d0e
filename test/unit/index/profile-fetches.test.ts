import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sha256Of } from '../../../src/digest.js';
import { parseProfile, encodeProfile, type AccessProfile } from '../../../src/vfs/access-profile.js';
import { plannedRanges } from '../../../src/index/profile-fetches.js';

const layer = sha256Of('layer');
const windows = sha256Of('windows');

/** The ranges a profile plans for its replay (sent by a mount as soon as the profile is read): a hint, checked like the rest of a profile from elsewhere. */
describe('planned fetches of an access profile', () => {
  const profile: AccessProfile = { version: 1, files: [{ path: '/bin/sh' }], fetches: { blobs: [windows, layer], ranges: [[0, 0, 30_000], [1, 1000, 90_000], [1, 5_000_000, 5_100_000]] } };

  it('round-trip with the profile, and only ranges inside a blob of this image are sent', () => {
    const back = parseProfile(encodeProfile(profile).toString());
    assert.deepEqual(back.fetches, profile.fetches);
    const sizes = new Map([
      [layer as string, 1_000_000],
      [windows as string, 40_000],
    ]);
    assert.deepEqual(plannedRanges(back.fetches!, sizes), [
      { digest: windows, start: 0, end: 30_000 },
      { digest: layer, start: 1000, end: 90_000 },
    ], 'past the end of its layer: dropped');
    assert.deepEqual(plannedRanges(back.fetches!, new Map()), [], 'blobs of another image: nothing');
    // A crafted plan: ranges held until read are bounded, each and in all.
    const huge = new Map([[layer as string, 2 ** 40]]);
    assert.deepEqual(plannedRanges({ blobs: [layer], ranges: [[0, 0, 2 ** 30]] }, huge), [], 'a range of a GiB is not sent');
    const many = plannedRanges({ blobs: [layer], ranges: Array.from({ length: 100 }, (_, i): [number, number, number] => [0, i * 2 ** 24, (i + 1) * 2 ** 24]) }, huge);
    assert.equal(many.length, 16, '256 MiB in all');
  });

  it('a plan that does not add up makes the profile unusable, never trusted', () => {
    const withFetches = (fetches: unknown) => JSON.stringify({ version: 1, files: [{ path: '/bin/sh' }], fetches });
    for (const [why, fetches] of [
      ['a blob that is not a digest', { blobs: ['nope'], ranges: [] }],
      ['a range naming no blob', { blobs: [layer], ranges: [[1, 0, 10]] }],
      ['an empty range', { blobs: [layer], ranges: [[0, 10, 10]] }],
      ['a negative offset', { blobs: [layer], ranges: [[0, -1, 10]] }],
      ['not a triple', { blobs: [layer], ranges: [[0, 10]] }],
      ['no ranges', { blobs: [layer] }],
      ['too many ranges', { blobs: [layer], ranges: Array.from({ length: 5000 }, (_, i) => [0, i, i + 1]) }],
    ] as const) {
      assert.throws(() => parseProfile(withFetches(fetches)), (err: Error & { code?: string }) => err.code === 'USAGE' && /planned fetch|fetches/.test(err.message), why);
    }
  });
});
