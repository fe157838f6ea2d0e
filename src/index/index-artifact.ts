import { KrgoError } from '../errors.js';
import { parseDigest, sha256Of, digestHex, type Digest } from '../digest.js';
import { MediaType } from '../image/media-types.js';
import { embeddedContent, type Descriptor } from '../image/manifest.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { headerValue } from '../registry/transport.js';
import { pushBlob, putManifest } from '../registry/upload.js';
import { decodeIndex, encodeIndex } from './index-codec.js';
import { EmbeddedBlobScanner } from './embedded-blobs.js';
import { tracePhase } from '../util/phase-trace.js';
import { limitConcurrency } from '../util/concurrency.js';
import { indexFilesOf, type IndexFiles } from './index-store.js';
import type { LayerIndex } from './layer-index.js';
import { encodeProfile, MAX_PROFILE_BYTES, parseProfile, type AccessProfile } from '../vfs/access-profile.js';

export const INDEX_ARTIFACT_TYPE = 'application/vnd.krgo.layer-indexes.v1';
export const LAYER_INDEX_MEDIA_TYPE = 'application/vnd.krgo.layer-index.v6';
/** What krgo before pushed (index formats 5, 4 and 3): still read. */
const LEGACY_LAYER_INDEX_MEDIA_TYPES = ['application/vnd.krgo.layer-index.v5', 'application/vnd.krgo.layer-index.v4', 'application/vnd.krgo.layer-index.v3'];
/** A layer index's seek windows (window-table.ts): read by range, never fetched whole by a mount. */
export const INDEX_WINDOWS_MEDIA_TYPE = 'application/vnd.krgo.layer-index-windows.v1';
export const ACCESS_PROFILE_MEDIA_TYPE = 'application/vnd.krgo.access-profile.v1+json';
/** The seek windows an access profile names (profile-windows.ts): read by range, never fetched whole. */
export const PROFILE_WINDOWS_MEDIA_TYPE = 'application/vnd.krgo.access-profile-windows.v1';
/** A profile's windows blob larger than this is read by range, as the replay needs each window. */
const MAX_WINDOWS_AHEAD_BYTES = 8 * 1024 * 1024;
const LAYER_ANNOTATION = 'dev.krgo.layer.digest';
const EMPTY_CONFIG = Buffer.from('{}');
const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';

interface ArtifactManifest {
  artifactType?: string;
  layers: (Descriptor & { annotations?: Record<string, string> })[];
  subject?: { digest: string };
}

/** Names the image manifest a member kept beside the tag (or an entry of the list krgo kept there before) is for. */
const SUBJECT_ANNOTATION = 'dev.krgo.subject';
/**
 * What `<tag>.krgo-indexes` names: one artifact manifest whose members are those of the index
 * artifacts of the images under the tag (each annotated with its subject), the newest one's
 * embedded. One level of base64 instead of the list of embedded artifact manifests krgo pushed
 * before (an index of manifests), whose entries would embed their members a second time.
 */
const TAGGED_INDEXES_TYPE = 'application/vnd.krgo.tagged-indexes.v2';
/** Subjects the tag-keyed manifest keeps (other platforms' images, and stale ones until they drop out). */
const MAX_TAGGED = 8;
/** Longest tag the distribution spec allows. */
const MAX_TAG_LENGTH = 128;

/**
 * The tag beside an image's tag that lists its index artifacts (each one embedded): a mount by
 * tag asks for it together with the manifest, before the manifest's digest is known, so the
 * indexes come one round trip sooner than by the digest's referrers. Undefined when too long.
 */
export function taggedIndexesTag(tag: string): string | undefined {
  const tagged = `${tag}.krgo-indexes`;
  return tagged.length <= MAX_TAG_LENGTH ? tagged : undefined;
}

/**
 * What is kept under `<tag>.krgo-indexes`: the members of the artifacts of each image under the
 * tag, or the entries of the list of artifact manifests an earlier krgo kept there.
 */
export interface TaggedIndexes {
  members: ArtifactLayer[];
  entries: Descriptor[];
  /**
   * Indexes embedded in what was kept under the tag, decoded while it still arrived, by the
   * digest of their bytes (not yet matched to a member: whoever takes one checks that digest
   * against the verified member's).
   */
  decodedEarly?: ReadonlyMap<string, FetchedIndex>;
}
const NOTHING_TAGGED: TaggedIndexes = { members: [], entries: [] };

/**
 * What is kept under the tag beside `tag`, or nothing (no such tag, or anything else wrong: the
 * referrers of the manifest's digest are asked then, as before).
 */
export async function taggedIndexes(client: RegistryClient, tag: string): Promise<TaggedIndexes> {
  const tagged = taggedIndexesTag(tag);
  if (!tagged) return NOTHING_TAGGED;
  try {
    // The indexes embedded in it are most of its bytes (~45 ms of transfer at 100 Mbit/s for the
    // bench's larger image): each is decoded as soon as it is in, while the rest still comes.
    const decodedEarly = new Map<string, FetchedIndex>();
    const scanner = new EmbeddedBlobScanner((encoded) => {
      try {
        const index = decodeIndex(encoded);
        tracePhase(`index of ${index.layerDigest.slice(7, 19)} decoded as it came`);
        decodedEarly.set(sha256Of(encoded), { index, encoded });
      } catch {
        // Not an index (the access profile), or a bad one: the usual path reads and reports it.
      }
    });
    const { parsed } = await client.getManifest(tagged, (chunk) => scanner.push(chunk));
    if (parsed.kind === 'index') return { members: [], entries: parsed.manifests };
    return parsed.artifactType === TAGGED_INDEXES_TYPE ? { members: parsed.layers, entries: [], decodedEarly } : NOTHING_TAGGED;
  } catch {
    return NOTHING_TAGGED;
  }
}

/** The `sha256-<hex>` tag where referrers live when the registry has no referrers API. */
function fallbackTag(digest: Digest): string {
  return `${digest.slice(0, digest.indexOf(':'))}-${digestHex(digest)}`;
}

/** Referrers of a manifest: the referrers API first, then the tag fallback (Debian's registry 2.8). */
async function referrers(client: RegistryClient, subject: Digest): Promise<Descriptor[]> {
  const repo = client.endpoint.repository;
  // Both at once: one round trip instead of two on registries without the API.
  const viaTag = client.getManifest(fallbackTag(subject)).then(
    (tagged) => (tagged.parsed.kind === 'index' ? tagged.parsed.manifests : []),
    (err: unknown) => {
      if (err instanceof KrgoError && err.code === 'NOT_FOUND') return [];
      throw err;
    },
  );
  viaTag.catch(() => undefined);
  const api = await client.transport.request({
    path: `/v2/${repo}/referrers/${subject}?artifactType=${encodeURIComponent(INDEX_ARTIFACT_TYPE)}`,
    scopes: [client.pullScope],
    headers: { accept: MediaType.ociIndex },
    expect: [200, 404],
  });
  if (api.status === 200 && (headerValue(api.headers, 'content-type') ?? '').startsWith(MediaType.ociIndex)) {
    const index = (await api.body.json()) as { manifests?: Descriptor[] };
    return index.manifests ?? [];
  }
  await api.body.dump();
  return viaTag;
}

type ArtifactLayer = Descriptor & { annotations?: Record<string, string> };

/** The blobs of an index artifact, uploaded: what `publishIndexArtifact` lists. */
export interface UploadedIndexBlobs {
  config: Digest;
  layers: ArtifactLayer[];
  /** The bytes of the layers a mount reads whole (indexes, profile), by digest: to embed. */
  contents: Map<string, Buffer>;
}

/** What an index artifact carries beside the indexes. */
export interface ArtifactExtras {
  profile?: AccessProfile;
  /** The blob `profile.seekWindows` names. */
  profileWindows?: Buffer;
  /**
   * Puts a windows blob whose bytes are not at hand into the target (a cross-repository mount,
   * say); without it they are fetched from the target's repository.
   */
  placeWindows?: (descriptor: Descriptor) => Promise<void>;
}

/**
 * Uploads an index artifact's blobs (each index, its windows, the profile and its windows), all
 * at once: they need no image manifest yet, so a push sends them beside the image's own layers.
 */
export async function uploadIndexBlobs(client: RegistryClient, indexes: readonly IndexFiles[], extras: ArtifactExtras = {}): Promise<UploadedIndexBlobs> {
  const { profile, profileWindows, placeWindows } = extras;
  // Mostly HEADs of blobs the registry has (a derived image's base indexes): many at once.
  const limit = limitConcurrency(8);
  const contents = new Map<string, Buffer>();
  const pushRead = async (data: Buffer) => {
    const digest = await pushBlob(client, data);
    contents.set(digest, data);
    return digest;
  };
  const perIndex = indexes.map((index) => {
    const annotations = { [LAYER_ANNOTATION]: index.layerDigest };
    const data = index.encoded;
    const indexBlob = limit(async (): Promise<ArtifactLayer> => ({ mediaType: LAYER_INDEX_MEDIA_TYPE, digest: await pushRead(data), size: data.length, annotations }));
    const windowsBlob = limit(async (): Promise<ArtifactLayer> => {
      const descriptor = { mediaType: INDEX_WINDOWS_MEDIA_TYPE, digest: index.windows.digest, size: index.windows.size };
      if (!index.windows.blob && placeWindows) {
        await placeWindows(descriptor);
        return { ...descriptor, annotations };
      }
      // An index taken from the registry came without its windows: they are fetched whole (and
      // checked against their digest) to go with it.
      const windows = index.windows.blob ?? (await client.getBlobBytes(descriptor, 1024 * 1024 * 1024));
      return { mediaType: INDEX_WINDOWS_MEDIA_TYPE, digest: await pushBlob(client, windows), size: windows.length, annotations };
    });
    return Promise.all([indexBlob, windowsBlob]);
  });
  const profileBlobs = profile
    ? Promise.all([
        (async (): Promise<ArtifactLayer> => {
          const data = encodeProfile(profile);
          return { mediaType: ACCESS_PROFILE_MEDIA_TYPE, digest: await pushRead(data), size: data.length };
        })(),
        ...(profile.seekWindows && profileWindows
          ? [(async (): Promise<ArtifactLayer> => ({ mediaType: PROFILE_WINDOWS_MEDIA_TYPE, digest: await pushBlob(client, profileWindows), size: profileWindows.length }))()]
          : []),
      ])
    : [];
  const [config, pairs, profileLayers] = await Promise.all([pushBlob(client, EMPTY_CONFIG), Promise.all(perIndex), profileBlobs]);
  return { config, layers: [...pairs.flat(), ...profileLayers], contents };
}

/**
 * Stores layer indexes in the registry as an OCI artifact whose subject is the image manifest,
 * and lists it in the `sha256-<hex>` referrers tag for registries without the API.
 */
export async function pushIndexArtifact(
  client: RegistryClient,
  image: ArtifactSubject,
  indexes: LayerIndex[],
  extras: ArtifactExtras = {},
): Promise<Digest> {
  return publishIndexArtifact(client, image, await uploadIndexBlobs(client, indexes.map((index) => indexFilesOf(index)), extras));
}

/** The image an index artifact refers to; its config, when given, rides along in the artifact. */
export type ArtifactSubject = Pick<ResolvedImage, 'manifest' | 'manifestDigest' | 'manifestBytes'> & { configBytes?: Buffer };

/**
 * Blob bytes an artifact manifest carries itself (and the manifest kept beside the tag, which
 * repeats its members). Base64 makes them 4/3 as large: 512 KiB stays well below the 4 MiB
 * registries commonly allow for a manifest (Docker Hub, distribution 3).
 */
const MAX_EMBEDDED_BYTES = 512 * 1024;
/** An artifact manifest up to this size is embedded in the referrers list (one that embeds its members is larger). */
const MAX_LISTED_MANIFEST_BYTES = 64 * 1024;

/**
 * The artifact's members with what a mount reads whole embedded (OCI descriptor `data`), so
 * that the manifest a mount asks for with the image's holds everything it needs to be ready: the
 * image config first, then the profile, then the indexes in layer order, within the budget.
 * Every member stays a blob in the repository too (krgo before this fetches them by digest).
 */
export function embedMembers(layers: readonly ArtifactLayer[], contents: ReadonlyMap<string, Buffer>, image: ArtifactSubject): ArtifactLayer[] {
  const config = image.manifest.config;
  const configMember: ArtifactLayer[] = image.configBytes && image.configBytes.length === config.size ? [{ mediaType: config.mediaType, digest: config.digest, size: config.size }] : [];
  const members = [...layers, ...configMember];
  const bytesOf = (member: ArtifactLayer) => (member.digest === config.digest ? image.configBytes : contents.get(member.digest));
  const rank = (member: ArtifactLayer) => (member.digest === config.digest ? 0 : member.mediaType === ACCESS_PROFILE_MEDIA_TYPE ? 1 : 2);
  const chosen = new Set<ArtifactLayer>();
  let budget = MAX_EMBEDDED_BYTES;
  for (const member of [...members].sort((a, b) => rank(a) - rank(b))) {
    const bytes = bytesOf(member);
    if (!bytes || bytes.length > budget) continue;
    chosen.add(member);
    budget -= bytes.length;
  }
  // The config is listed only to be embedded.
  return members.flatMap((member) => (chosen.has(member) ? [{ ...member, data: bytesOf(member)!.toString('base64') }] : member.digest === config.digest ? [] : [member]));
}

/** The artifact manifest over uploaded blobs, and the referrers tag that lists it. */
export async function publishIndexArtifact(client: RegistryClient, image: ArtifactSubject, blobs: UploadedIndexBlobs): Promise<Digest> {
  const { config: configDigest } = blobs;
  const layers = embedMembers(blobs.layers, blobs.contents, image);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: INDEX_ARTIFACT_TYPE,
      config: { mediaType: EMPTY_MEDIA_TYPE, digest: configDigest, size: EMPTY_CONFIG.length },
      layers,
      subject: { mediaType: image.manifest.mediaType, digest: image.manifestDigest, size: image.manifestBytes.length },
      annotations: { 'org.opencontainers.image.created': new Date().toISOString() },
    }),
  );
  const digest = sha256Of(manifest);
  const tag = client.reference.tag;
  // The lookups of what lists the image already need nothing of this put: all at once.
  const [, referring, tagged] = await Promise.all([putManifest(client, digest, MediaType.ociManifest, manifest), referrers(client, image.manifestDigest), tag ? taggedIndexes(client, tag) : NOTHING_TAGGED]);
  // The artifact manifest rides along in the referrers list (`data`, checked against its digest
  // when read) while it is small; one that embeds its members is fetched by digest instead.
  const data = manifest.length <= MAX_LISTED_MANIFEST_BYTES ? { data: manifest.toString('base64') } : {};
  const entry = { mediaType: MediaType.ociManifest, digest, size: manifest.length, artifactType: INDEX_ARTIFACT_TYPE, ...data };
  const existing = referring.filter((d) => d.digest !== digest);
  const taggedName = tag ? taggedIndexesTag(tag) : undefined;
  await Promise.all([
    putManifest(client, fallbackTag(image.manifestDigest), MediaType.ociIndex, indexOf([...existing.map(({ data: _old, ...d }) => d), entry])),
    taggedName ? putManifest(client, taggedName, MediaType.ociManifest, taggedManifest(tagged, layers, image.manifestDigest, configDigest)) : undefined,
  ]);
  return digest;
}

/** The layer an artifact member is the index of (current or legacy format), or undefined for its other members. */
function indexedLayerOf(member: ArtifactLayer): string | undefined {
  return member.mediaType === LAYER_INDEX_MEDIA_TYPE || LEGACY_LAYER_INDEX_MEDIA_TYPES.includes(member.mediaType) ? member.annotations?.[LAYER_ANNOTATION] : undefined;
}

/**
 * The manifest kept under `<tag>.krgo-indexes`: this artifact's members (as embedded) after
 * those of the other images already there (the newest few, named only, or every mount would
 * fetch every platform's indexes). The lists earlier krgo kept there are replaced: their images
 * are found through their referrers until indexed again.
 */
function taggedManifest(tagged: TaggedIndexes, members: readonly ArtifactLayer[], subject: Digest, emptyConfig: Digest): Buffer {
  const otherSubjects = [...new Set(tagged.members.map((m) => m.annotations?.[SUBJECT_ANNOTATION]).filter((d) => d !== undefined && d !== subject))].slice(-(MAX_TAGGED - 1));
  const others = tagged.members.filter((m) => otherSubjects.includes(m.annotations?.[SUBJECT_ANNOTATION])).map(({ data: _named, ...m }) => m);
  const mine = members.map((m) => ({ ...m, annotations: { ...m.annotations, [SUBJECT_ANNOTATION]: subject } }));
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: TAGGED_INDEXES_TYPE,
      config: { mediaType: EMPTY_MEDIA_TYPE, digest: emptyConfig, size: EMPTY_CONFIG.length },
      layers: [...others, ...mine],
    }),
  );
}

function indexOf(manifests: Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
}

/** An image's index artifact as found in the registry (its subject checked). */
export type IndexArtifact = ArtifactManifest;

/**
 * The newest index artifact of this image: from what is kept beside the tag when it names this very
 * manifest (the tag may have moved since), else from the referrers of the manifest's digest.
 */
export async function locateIndexArtifact(
  client: RegistryClient,
  image: Pick<ResolvedImage, 'manifestDigest'>,
  warn: (message: string) => void,
  tagged?: Promise<TaggedIndexes>,
  options: { referrers?: boolean } = {},
): Promise<IndexArtifact | undefined> {
  const isIndexArtifact = (d: Descriptor) => (d as { artifactType?: string }).artifactType === INDEX_ARTIFACT_TYPE;
  const listed = await tagged;
  const members = listed?.members.filter((m) => m.annotations?.[SUBJECT_ANNOTATION] === image.manifestDigest);
  if (members?.length) return { layers: members, subject: { digest: image.manifestDigest } };
  const fromTag = listed?.entries.filter((d) => isIndexArtifact(d) && d.annotations?.[SUBJECT_ANNOTATION] === image.manifestDigest);
  if (!fromTag?.length && options.referrers === false) return undefined;
  const candidates = fromTag?.length ? fromTag : (await referrers(client, image.manifestDigest)).filter(isIndexArtifact);
  const newest = candidates[candidates.length - 1];
  if (!newest) return undefined;
  const bytes = embeddedContent(newest) ?? (await client.getManifest(newest.digest)).bytes;
  const artifact = JSON.parse(bytes.toString('utf8')) as ArtifactManifest;
  if (artifact.subject?.digest !== image.manifestDigest) {
    warn(`index artifact ${newest.digest} refers to ${artifact.subject?.digest ?? 'nothing'}, not this image; ignored`);
    return undefined;
  }
  return Array.isArray(artifact.layers) ? artifact : undefined;
}

/** What the artifact embeds of this blob (base64, checked against the digest when used), if anything. */
export function embeddedIn(artifact: IndexArtifact | undefined, blob: Pick<Descriptor, 'digest'>): string | undefined {
  const data = artifact?.layers.find((member) => member.digest === blob.digest)?.data;
  return typeof data === 'string' ? data : undefined;
}

/** What an index artifact holds for a mount. */
export interface FetchedArtifact {
  indexes: Map<Digest, FetchedIndex>;
  /** What a workload read first, to fetch in one burst after the mount is ready. */
  profile?: AccessProfile;
}

/** An index from the registry, with its file as fetched (saved as is: no second encoding). */
export interface FetchedIndex {
  index: LayerIndex;
  encoded: Buffer;
}

/**
 * The layer indexes stored for this image in the registry, verified (format, checksum, layer
 * digest and size) before use; layers the artifact lacks or gets wrong are left out. Their seek
 * windows stay in the registry until a read needs one.
 */
export async function fetchIndexArtifact(
  client: RegistryClient,
  image: Pick<ResolvedImage, 'manifest' | 'manifestDigest'>,
  warn: (message: string) => void,
  options: {
    profileOnly?: boolean;
    /**
     * The profile is to be replayed: its seek windows blob (a few hundred kB) is fetched whole
     * once the indexes are in, while the tree is built, instead of by range in the replay, where
     * its answer would queue behind the runs it unlocks.
     */
    windowsAhead?: boolean;
    tagged?: Promise<TaggedIndexes>;
    /** The artifact, already being located (`locateIndexArtifact`). */
    located?: Promise<IndexArtifact | undefined>;
    /**
     * The access profile, told as soon as it is read (before the indexes are decoded), with the
     * sizes of the blobs its planned fetches may read: the layers and their windows blobs.
     */
    onProfile?: (profile: AccessProfile, blobSizes: ReadonlyMap<string, number>) => void;
    /** The layers the artifact has an index of, told before those are fetched. */
    onListed?: (layerDigests: ReadonlySet<string>) => void;
  } = {},
): Promise<FetchedArtifact> {
  const found = new Map<Digest, FetchedIndex>();
  const result: FetchedArtifact = { indexes: found };
  const artifact = await (options.located ?? locateIndexArtifact(client, image, warn, options.tagged));
  if (!artifact) return result;
  const sizes = new Map(image.manifest.layers.map((l) => [l.digest as string, l.size]));
  tracePhase('index artifact listed');
  options.onListed?.(new Set(artifact.layers.flatMap((layer) => indexedLayerOf(layer) ?? [])));
  const profileMember = artifact.layers.find((layer) => layer.mediaType === ACCESS_PROFILE_MEDIA_TYPE);
  const profileRead = profileMember
    ? (async () => {
        try {
          result.profile = parseProfile((await client.getBlobBytes({ ...profileMember, digest: parseDigest(profileMember.digest) }, MAX_PROFILE_BYTES)).toString('utf8'));
          if (options.onProfile) {
            const windowsBlobs = artifact.layers.filter((m) => m.mediaType === INDEX_WINDOWS_MEDIA_TYPE).map((m): [string, number] => [m.digest, m.size]);
            options.onProfile(result.profile, new Map([...sizes, ...windowsBlobs]));
            // A turn of the event loop for the requests it made (and their connections) before decoding holds the thread.
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        } catch (err) {
          warn(`access profile from the registry is not usable (${(err as Error).message}); nothing is fetched ahead`);
        }
      })()
    : undefined;
  // Embedded, the profile is read first: what it plans to fetch goes out before the indexes are
  // decoded. Fetched, it comes beside them.
  if (typeof profileMember?.data === 'string') await profileRead;
  await Promise.all([
    profileRead,
    ...artifact.layers.map(async (layer) => {
      if (layer === profileMember) return;
      const layerDigest = indexedLayerOf(layer);
      // Windows blobs are not fetched: the index names its own, read by range on demand.
      if (options.profileOnly || !layerDigest || !sizes.has(layerDigest)) return;
      try {
        // Decoded while what was kept under the tag arrived: the same bytes, if their digest is this member's.
        const early = (await options.tagged)?.decodedEarly?.get(layer.digest);
        let fetched: FetchedIndex;
        if (early && early.encoded.length === layer.size) fetched = early;
        else {
          const encoded = await client.getBlobBytes({ ...layer, digest: parseDigest(layer.digest) }, 256 * 1024 * 1024);
          tracePhase(`index of ${layerDigest.slice(7, 19)} fetched`);
          fetched = { index: decodeIndex(encoded), encoded };
          tracePhase(`index of ${layerDigest.slice(7, 19)} decoded`);
        }
        const { index } = fetched;
        if (index.layerDigest !== layerDigest || index.compressedSize !== sizes.get(layerDigest)) throw new KrgoError('INDEX_INVALID', 'it describes another layer');
        found.set(index.layerDigest, fetched);
      } catch (err) {
        warn(`index of layer ${layerDigest} from the registry is not usable (${(err as Error).message}); the layer will be scanned`);
      }
    }),
  ]);
  // Once the indexes are in (not beside them: the link is theirs first), while the tree is built.
  const windows = result.profile?.seekWindows;
  if (options.windowsAhead && windows && windows.size <= MAX_WINDOWS_AHEAD_BYTES) {
    windows.coming = client.getBlobBytes({ mediaType: PROFILE_WINDOWS_MEDIA_TYPE, digest: windows.digest, size: windows.size }, MAX_WINDOWS_AHEAD_BYTES).catch((err: unknown) => {
      warn(`seek windows of the access profile not fetched whole (${(err as Error).message}); read by range instead`);
      return undefined;
    });
  }
  return result;
}
