import { join } from 'node:path';
import { RegistryRangeSource } from '../blob/range-source.js';
import { DiskSpanStore } from '../cache/disk-span-store.js';
import { MergedTree } from '../vfs/merged-tree.js';
import { LayerReader, SpanCache } from '../vfs/layer-reader.js';
import { ImageReader, prefetchProfileInLayers } from '../vfs/image-reader.js';
import type { AccessProfile } from '../vfs/access-profile.js';
import type { PreparedImage } from './prepare-image.js';
import { tracePhase } from '../util/phase-trace.js';

export interface LazyImage {
  tree: MergedTree;
  reader: ImageReader;
  /** One reader per layer, for work done layer by layer (materialize -g). */
  layers: LayerReader[];
  source: RegistryRangeSource;
  /** Waits for the span cache's disk writes (they follow the reads in the background). */
  flush(): Promise<void>;
  /** Reads are being served: the span cache's disk writes wait for a pause in them. */
  busy(): void;
  /** The fetches of the profile given, started before the tree was built; settles when all have. */
  profileFetched?: Promise<void>;
}

/** Turns of the event loop that see a profile's first requests sent (measured: three). */
const SEND_TURNS = 3;

/**
 * The read side shared by mount and materialize: the layers stacked in memory, and file bytes
 * fetched by range through span caches in memory and on disk (`<cacheDir>/spans`).
 */
export async function openLazyImage(
  prepared: PreparedImage,
  options: {
    cacheDir: string;
    memoryCacheBytes?: number;
    diskCacheBytes?: number;
    warn: (message: string) => void;
    /** A profile to replay: its fetches, as the layer indexes place its files, start before the tree is built. */
    profile?: AccessProfile;
    /** The range source to read through, when one was made before (with a profile's planned fetches on their way). */
    source?: RegistryRangeSource;
  },
): Promise<LazyImage> {
  const source = options.source ?? new RegistryRangeSource(prepared.client);
  const disk = new DiskSpanStore(join(options.cacheDir, 'spans'), options.diskCacheBytes);
  const cache = new SpanCache(options.memoryCacheBytes, disk);
  const background = (err: unknown) => options.warn(`background fetch failed: ${(err as Error).message}`);
  // One reader per distinct blob: a layer named twice shares its spans and fetches.
  const byDigest = new Map<string, LayerReader>();
  const readers = prepared.indexes.map((index) => {
    let reader = byDigest.get(index.layerDigest);
    if (!reader) byDigest.set(index.layerDigest, (reader = new LayerReader(index, source, cache, background)));
    return reader;
  });
  let profileFetched: Promise<void> | undefined;
  if (options.profile) {
    // Its windows first: they change where the fetches start (and what they cost).
    if (options.profile.seekWindows) for (const reader of byDigest.values()) reader.addProfileWindows(options.profile.seekWindows);
    // A hint: what fails here is fetched (or fails) again when the replay or a read needs it.
    profileFetched = prefetchProfileInLayers(readers, prepared.indexes, options.profile).catch((err: unknown) => options.warn(`the access profile's early fetches failed: ${(err as Error).message}`));
    // Building the tree holds the thread ~100 ms: a few turns of the event loop first let the
    // requests go out (the span cache's lookups, the batching of background reads, the writes).
    for (let turn = 0; turn < SEND_TURNS; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  tracePhase('tree started');
  const tree = new MergedTree(options.warn);
  for (const index of prepared.indexes) await tree.addLayerEntries(index.entries);
  tracePhase('tree built');
  return { tree, reader: new ImageReader(tree, readers), layers: readers, source, flush: () => disk.flush(), busy: () => disk.busy(), ...(profileFetched ? { profileFetched } : {}) };
}
