import { parseDigest, type Digest } from '../digest.js';
import type { BlobRange } from '../blob/range-source.js';
import { isCount } from './profile-windows.js';

/**
 * The byte ranges a replay of an access profile asks the registry for, planned when the profile
 * is pushed (build-profile-fetches.ts): what the replay's runs fetch with an empty cache, in the
 * order it wants them. A mount sends them as soon as the profile arrives, before it has decoded
 * the indexes and placed the profile's files (~0.1 s on the bench's image); the replay then finds
 * its bytes on their way. Only a hint: a range that no read lies within is fetched for nothing,
 * and a read outside every range is fetched as it would have been.
 */
export interface ProfileFetches {
  /** The blobs the ranges are in: layers, and the windows blobs of their indexes. */
  blobs: Digest[];
  /** [blob number in `blobs`, start, end) of its bytes, in the order the replay wants them. */
  ranges: [number, number, number][];
}

/** Bounds on a plan from elsewhere: a replay has a few hundred runs. */
export const MAX_PROFILE_FETCHES = 4096;
const MAX_PLANNED_BLOBS = 512;
/**
 * A planned range's bytes are held from the moment it is asked for until its read takes them:
 * a run is at most 4 MiB of output and its lead-in (a few MiB compressed), a replay of gcc ~13 MB
 * in all. Ranges past these bounds (a crafted plan) are not sent: a hint, not an order.
 */
const MAX_PLANNED_RANGE_BYTES = 16 * 1024 * 1024;
const MAX_PLANNED_BYTES = 256 * 1024 * 1024;

/** The planned fetches of a profile from the registry, checked; anything off is a usage error of the profile. */
export function parseProfileFetches(raw: unknown, invalid: (why: string) => never): ProfileFetches {
  const doc = raw as { blobs?: unknown; ranges?: unknown };
  if (!Array.isArray(doc?.blobs) || doc.blobs.length > MAX_PLANNED_BLOBS) return invalid(`"fetches.blobs" must be an array of at most ${MAX_PLANNED_BLOBS} digests`);
  const blobs = doc.blobs.map((d: unknown) => {
    try {
      return parseDigest(d as string);
    } catch {
      return invalid('a planned fetch names a blob that is not a digest');
    }
  });
  if (!Array.isArray(doc.ranges) || doc.ranges.length > MAX_PROFILE_FETCHES) return invalid(`"fetches.ranges" must be an array of at most ${MAX_PROFILE_FETCHES}`);
  const ranges = doc.ranges.map((r: unknown): [number, number, number] => {
    if (!Array.isArray(r) || r.length !== 3 || !r.every(isCount)) return invalid('a planned fetch is not [blob, start, end)');
    const [blob, start, end] = r as [number, number, number];
    if (blob >= blobs.length || end <= start) return invalid('a planned fetch is not [blob, start, end)');
    return [blob, start, end];
  });
  return { blobs, ranges };
}

/**
 * The planned ranges that lie within a blob of this image (its layers and their indexes'
 * windows blobs, with their sizes), within the bounds on what is held; others are dropped (a
 * plan for another image, or a crafted one).
 */
export function plannedRanges(fetches: ProfileFetches, blobSizes: ReadonlyMap<string, number>): BlobRange[] {
  let total = 0;
  return fetches.ranges.flatMap(([k, start, end]) => {
    const digest = fetches.blobs[k]!;
    const size = blobSizes.get(digest);
    if (size === undefined || end > size || end - start > MAX_PLANNED_RANGE_BYTES || total + (end - start) > MAX_PLANNED_BYTES) return [];
    total += end - start;
    return [{ digest, start, end }];
  });
}
