import { parseDigest, type Digest } from '../digest.js';
import type { WindowTable } from './window-table.js';

/**
 * Seek windows stored with an access profile: the 32 KiB of output before each point where a
 * replay of the profile starts inflating (the first cell of each stretch of cells it reads) when
 * the layer's own index keeps no window there. Without them such a fetch starts at the index's
 * previous keyed point (up to 128 KiB of output back) and inflates its way forward: on the
 * bench's workloads that lead-in was a tenth of all they fetched. A window is placed by layer
 * and uncompressed offset, not by seek point number, so it stays right for any index of the
 * layer; one that matches no point of the index in use is simply not used.
 */
export interface ProfileWindows {
  /** The blob of packed windows (window-table.ts layout), an artifact member of its own. */
  digest: Digest;
  size: number;
  points: ProfileWindowPoint[];
  /** The blob, fetched whole since the profile was read from the registry (a mount replays all of it). */
  coming?: Promise<Buffer | undefined>;
}

export interface ProfileWindowPoint {
  /** The layer whose stream the window belongs to. */
  layer: Digest;
  /** Uncompressed offset of the seek point the window precedes. */
  out: number;
  /** Where its packed bytes lie in the blob, and the SHA-256 of the window, hex. */
  offset: number;
  length: number;
  sha256: string;
}

/** Bounds on windows from elsewhere: a profile's replay has a few hundred cold starts at most. */
export const MAX_PROFILE_WINDOWS = 4096;
/** A 32 KiB window deflated alone is never much larger than itself. */
const MAX_PACKED_WINDOW = 64 * 1024;

/** A whole number that counts or places bytes, as a profile from elsewhere must give them. */
export const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** The windows named by a profile from the registry, checked; anything off is a usage error of the profile. */
export function parseProfileWindows(raw: unknown, invalid: (why: string) => never): ProfileWindows {
  const doc = raw as { digest?: unknown; size?: unknown; points?: unknown };
  const digestOf = (value: unknown, what: string): Digest => {
    try {
      return parseDigest(value as string);
    } catch {
      return invalid(`${what} is not a digest`);
    }
  };
  const digest = digestOf(doc?.digest, 'the seek windows blob');
  if (!isCount(doc.size)) invalid('the seek windows blob has no size');
  const size = doc.size as number;
  if (!Array.isArray(doc.points) || doc.points.length > MAX_PROFILE_WINDOWS) invalid(`"seekWindows.points" must be an array of at most ${MAX_PROFILE_WINDOWS}`);
  const points = (doc.points as unknown[]).map((p): ProfileWindowPoint => {
    const point = p as Record<string, unknown>;
    if (!isCount(point?.out) || !isCount(point.offset) || !isCount(point.length)) return invalid('a seek window without its place');
    if (point.length > MAX_PACKED_WINDOW || point.offset + point.length > size) return invalid('a seek window outside its blob');
    if (typeof point.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(point.sha256)) return invalid('a seek window without its SHA-256');
    return { layer: digestOf(point.layer, 'the layer of a seek window'), out: point.out, offset: point.offset, length: point.length, sha256: point.sha256 };
  });
  return { digest, size, points };
}

/** The windows as a table the seek-window reader takes (its refs in the order of `points`). */
export function profileWindowTable(windows: ProfileWindows): WindowTable {
  return {
    digest: windows.digest,
    size: windows.size,
    refs: windows.points.map((p) => ({ offset: p.offset, length: p.length, sha256: Buffer.from(p.sha256, 'hex') })),
    ...(windows.coming ? { coming: windows.coming } : {}),
  };
}

/** For one layer: window number by the uncompressed offset it precedes. */
export function profileWindowsOf(windows: ProfileWindows, layer: Digest): Map<number, number> {
  const found = new Map<number, number>();
  windows.points.forEach((p, w) => {
    if (p.layer === layer) found.set(p.out, w);
  });
  return found;
}
