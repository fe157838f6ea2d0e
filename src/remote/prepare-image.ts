import { assertSupportedLayers, TOC_DIGEST_ANNOTATION } from '../image/media-types.js';
import { hostPlatform } from '../image/platform.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import type { ImageReference } from '../registry/reference.js';
import { readClientFor, type ImageSource } from '../registry/image-source.js';
import type { LayerIndex } from '../index/index-format.js';
import type { Descriptor } from '../image/manifest.js';
import { IndexStore } from '../index/index-store.js';
import { embeddedIn, fetchIndexArtifact, locateIndexArtifact, taggedIndexes, type FetchedArtifact, type IndexArtifact, type TaggedIndexes } from '../index/index-artifact.js';
import type { AccessProfile } from '../vfs/access-profile.js';
import { limitConcurrency } from '../util/concurrency.js';
import { tracePhase } from '../util/phase-trace.js';

export type IndexSource = 'cache' | 'registry' | 'built';

export interface IndexEvents {
  /**
   * Every layer's index is in the cache or on its way from the registry (none needs a pass over
   * its layer): what waits for the tree may get ready meanwhile.
   */
  indexesComing?(reference: ImageReference): void;
  /** A layer has no index anywhere: one pass over it starts (seconds for a large layer). */
  layerIndexing?(layer: number, digest: string, size: number): void;
  /** Where the index came from: the cache, the registry (an index artifact), or a full pass. */
  layerIndexed?(layer: number, source: IndexSource, index: LayerIndex, bytes: number): void;
  warn?(message: string): void;
}

export interface PreparedImage {
  client: RegistryClient;
  image: ResolvedImage;
  indexes: LayerIndex[];
  /** Whether the registry's index artifact was read (it is not when every index was cached). */
  artifactRead: boolean;
  /** The access profile stored with the indexes in the registry, if any (when it was read). */
  profile?: AccessProfile;
  /** What is kept beside the tag (the index artifacts' members), asked for with the manifest (by tag only). */
  tagged?: Promise<TaggedIndexes>;
}

/**
 * A layer's index made here: eStargz from its footer and TOC by range (no pass over the layer),
 * anything else by one streaming pass. The builders are imported only when a layer needs one.
 */
async function buildIndex(client: RegistryClient, layer: Descriptor, warn: (message: string) => void, toPush: boolean): Promise<LayerIndex> {
  if (layer.annotations?.[TOC_DIGEST_ANNOTATION]) {
    const { readStargzIndex } = await import('../index/estargz.js');
    return readStargzIndex(layer, (start, end) => client.readRange(layer.digest, start, end - start));
  }
  const [{ buildLayerIndex, PUSHED_SEEK_DENSITY }, { resumableChunks }] = await Promise.all([import('../index/layer-index.js'), import('../blob/resumable-chunks.js')]);
  return buildLayerIndex(resumableChunks(client, layer.digest, layer.size, 0, { log: warn }), layer.digest, layer.size, toPush ? PUSHED_SEEK_DENSITY : {});
}

/**
 * Resolves an image and gets one index per layer: from the cache when a valid one is there,
 * else by one streaming pass over the layer (resumable, verified), saved for next time. Only
 * what the first requests need is imported up front (the builders when a layer needs one): a
 * mount loads the rest of its modules while these requests are on the wire.
 */
export async function prepareImage(
  source: ImageSource,
  events: IndexEvents = {},
  options: {
    replaysProfile?: boolean;
    /**
     * An index from the registry is saved to the cache in the background, not waited for, and
     * one that cannot be written (a full or read-only disk) is warned about and used from memory;
     * the next run fetches it again. (A mount: it reads the index only once, and the cache is not
     * what it is for; its ready time is.)
     */
    uncachedIsFine?: boolean;
    /**
     * Called once the first requests (manifest, index list) are on their way: what the caller
     * does then overlaps their round trip instead of delaying them.
     */
    onAsked?: () => void;
    /**
     * The indexes made here are for a registry (`krgo index`): built the way pushed ones are
     * (sparse, denser windows), which takes longer than a mount should wait. With `rebuild`
     * (`krgo index --push`), a gzip layer's index found in another form (built by a mount or a
     * pull, or pushed by an older krgo) is built again: every mount fetches what is pushed.
     */
    toPush?: boolean | 'rebuild';
    /** The registry's access profile, as soon as it is read (a mount sends its planned fetches then), with the sizes of the blobs they may read. */
    onProfile?: (profile: AccessProfile, client: RegistryClient, blobSizes: ReadonlyMap<string, number>) => void;
  } = {},
): Promise<PreparedImage> {
  const warn = (message: string) => events.warn?.(message);
  const client = await readClientFor(source, warn);
  try {
    // By tag, the artifact list kept under a tag beside it is asked for with the manifest.
    const { tag, digest: pinned } = client.reference;
    const tagged = tag && !pinned ? taggedIndexes(client, tag) : undefined;
    tracePhase('manifest asked');
    const resolving = client.resolveManifest(source.platform ?? hostPlatform(), source.platform !== undefined);
    options.onAsked?.();
    const resolved = await resolving;
    tracePhase('manifest resolved');
    assertSupportedLayers(resolved.manifest.layers);
    const store = new IndexStore(source.cacheDir);
    const limit = limitConcurrency(3);
    // A manifest may name one blob many times: each distinct layer is looked up and indexed once.
    const distinct = [...new Map(resolved.manifest.layers.map((layer) => [layer.digest, layer])).values()];
    const cachedList = await Promise.all(distinct.map((layer) => store.load(layer.digest, layer.size, (why) => warn(`${why}; rebuilding it`))));
    // With `rebuild`, an index not in the form pushed ones have is looked for in the registry, else built again.
    const pushedForm = options.toPush === 'rebuild' ? (await import('../index/layer-index.js')).isPushedForm : undefined;
    const isUsable = (index: LayerIndex | undefined) => index !== undefined && (pushedForm?.(index) ?? true);
    const cached = new Map(distinct.map((layer, i) => [layer.digest, cachedList[i]]));
    // Before scanning any layer, ask the registry for indexes another machine pushed
    // (alongside the config: one round trip less).
    const none: FetchedArtifact = { indexes: new Map() };
    const artifactRead = !cachedList.every((c) => isUsable(c?.index));
    if (!artifactRead) events.indexesComing?.(resolved.reference);
    const onListed = (listed: ReadonlySet<string>) => {
      if (distinct.every((layer) => isUsable(cached.get(layer.digest)?.index) || listed.has(layer.digest))) events.indexesComing?.(resolved.reference);
    };
    // The manifest kept beside the tag came with the image manifest and embeds the image config
    // (when this krgo pushed it): taken from there, with no round trip of its own. Found only
    // through the referrers, the artifact would come later than the config fetched directly.
    const fromTag = tagged ? locateIndexArtifact(client, resolved, warn, tagged, { referrers: false }).catch(() => undefined) : undefined;
    const located: Promise<IndexArtifact | undefined> | undefined = artifactRead ? (fromTag ?? Promise.resolve(undefined)).then((found) => found ?? locateIndexArtifact(client, resolved, warn)) : undefined;
    const [image, artifact] = await Promise.all([
      (fromTag ?? Promise.resolve(undefined)).then((found) => client.withConfig(resolved, embeddedIn(found, resolved.manifest.config))),
      artifactRead
        ? fetchIndexArtifact(client, resolved, warn, {
            onListed,
            windowsAhead: options.replaysProfile === true,
            ...(located ? { located } : {}),
            // Indexes embedded in what is kept beside the tag were decoded as it came.
            ...(tagged ? { tagged } : {}),
            ...(options.onProfile ? { onProfile: (profile: AccessProfile, blobSizes: ReadonlyMap<string, number>) => options.onProfile!(profile, client, blobSizes) } : {}),
          }).catch((err: unknown) => {
            warn(`could not look for index artifacts: ${(err as Error).message}`);
            return none;
          })
        : none,
    ]);
    tracePhase('config and index artifact in');
    const byDigest = new Map<string, Promise<{ index: LayerIndex; source: IndexSource; bytes: number }>>();
    const indexOf = (layer: Descriptor) =>
      limit(async () => {
        const inCache = cached.get(layer.digest);
        if (inCache && isUsable(inCache.index)) return { index: inCache.index, source: 'cache' as const, bytes: inCache.bytes };
        const pushed = artifact.indexes.get(layer.digest);
        if (pushed && isUsable(pushed.index)) {
          const saved = store.save(pushed.index, pushed.encoded);
          if (options.uncachedIsFine) saved.catch((err: unknown) => warn(`the index of layer ${layer.digest} is not cached (${(err as Error).message}); the next run fetches it again`));
          else await saved;
          return { index: pushed.index, source: 'registry' as const, bytes: pushed.encoded.length };
        }
        const position = image.manifest.layers.findIndex((l) => l.digest === layer.digest);
        events.layerIndexing?.(position, layer.digest, layer.size);
        const index = await buildIndex(client, layer, warn, Boolean(options.toPush));
        return { index, source: 'built' as const, bytes: await store.save(index) };
      });
    const indexes = await Promise.all(
      image.manifest.layers.map(async (layer, i) => {
        let found = byDigest.get(layer.digest);
        if (!found) byDigest.set(layer.digest, (found = indexOf(layer)));
        const { index, source: from, bytes } = await found;
        events.layerIndexed?.(i, from, index, bytes);
        return index;
      }),
    );
    tracePhase('indexes in hand');
    return { client, image, indexes, artifactRead, ...(artifact.profile ? { profile: artifact.profile } : {}), ...(tagged ? { tagged } : {}) };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/**
 * The access profile stored for the image in the registry: the one found with the indexes, or,
 * when every index came from the cache (so the artifact was not read), looked up now.
 */
export async function storedProfile(prepared: PreparedImage, warn: (message: string) => void, options: { replays?: boolean } = {}): Promise<AccessProfile | undefined> {
  if (prepared.artifactRead) return prepared.profile;
  // The list asked for with the manifest names the artifact: no referrers lookup.
  return (await fetchIndexArtifact(prepared.client, prepared.image, warn, { profileOnly: true, windowsAhead: options.replays === true, ...(prepared.tagged ? { tagged: prepared.tagged } : {}) })).profile;
}
