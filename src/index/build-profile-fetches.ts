import type { BlobRange } from '../blob/range-source.js';
import { planProfile, type AccessProfile } from '../vfs/access-profile.js';
import type { LayerReader } from '../vfs/layer-reader.js';
import type { ReadableImage } from './build-profile-windows.js';
import { MAX_PROFILE_FETCHES, type ProfileFetches } from './profile-fetches.js';

/**
 * The ranges a replay of `profile` fetches from an empty cache (profile-fetches.ts), planned as
 * a mount's replay plans them: the files placed in the tree, their spans in runs, each run from
 * where its fetch starts (the profile's own windows taken first: they move those starts). In the
 * order the replay wants them; undefined when it fetches nothing by range.
 */
export function buildProfileFetches(image: ReadableImage & { layers: readonly LayerReader[] }, profile: AccessProfile): ProfileFetches | undefined {
  if (profile.seekWindows) for (const reader of new Set(image.layers)) reader.addProfileWindows(profile.seekWindows);
  const { ranges } = image.reader.layerRanges(planProfile(image.tree, profile).reads);
  const planned: (BlobRange & { order: number })[] = [];
  for (const [reader, wanted] of ranges) {
    for (const run of reader.spanRuns(wanted)) {
      const fetch = reader.coldFetch(run);
      if (!fetch) continue;
      // The window first (its answer is not to queue behind the run's), from the index's windows blob.
      if (fetch.window) planned.push({ ...fetch.window, order: run.order });
      planned.push({ digest: reader.layerDigest, start: fetch.range[0], end: fetch.range[1], order: run.order });
    }
  }
  if (planned.length === 0) return undefined;
  const chosen = planned.sort((a, b) => a.order - b.order).slice(0, MAX_PROFILE_FETCHES);
  const blobs = [...new Set(chosen.map((p) => p.digest))];
  return { blobs, ranges: chosen.map((p) => [blobs.indexOf(p.digest), p.start, p.end]) };
}
