import { rm } from 'node:fs/promises';
import { RootfsTarget } from '../materialize/rootfs-target.js';
import { defaultRootfs } from '../hostfs/rootfs-paths.js';
import { KrgoError } from '../errors.js';
import type { Digest } from '../digest.js';
import { BlobDownload, cachedBlobPath } from '../blob/blob-download.js';
import { StreamingIndexer } from '../index/layer-index.js';
import type { LayerIndex } from '../index/layer-index.js';
import { IndexStore } from '../index/index-store.js';
import { assertSupportedLayers } from '../image/media-types.js';
import { hostPlatform } from '../image/platform.js';
import { LayerApplier } from '../materialize/layer-applier.js';
import { LayerBranchWriter, layerDiffIds } from '../git/layer-branches.js';
import type { ResolvedImage } from '../registry/client.js';
import { readClientFor, type ImageSource } from '../registry/image-source.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { limitConcurrency } from '../util/concurrency.js';
import { sweepCacheGarbage } from '../util/cache-garbage.js';
import type { PullEvents } from './pull-events.js';

export interface PullOptions extends ImageSource {
  /** Defaults to the last component of the repository name, as in the original krgo. */
  rootfs?: string;
  /** Layers downloaded at once. */
  concurrency?: number;
  keepBlobs?: boolean;
  /** Also write a git repository with one branch per layer (`pull -g`). */
  git?: boolean;
  events?: PullEvents;
}

export interface PullResult {
  rootfs: string;
  metadataDir: string;
  image: ResolvedImage;
  layers: number;
  entries: number;
  skipped: number;
}

/**
 * The eager path: downloads every layer (in parallel, resumable, verified) and applies them in
 * order as they stream in, into a staging directory renamed into place only when all is done.
 */
export async function pullImage(options: PullOptions): Promise<PullResult> {
  const reference = parseReference(options.image);
  const rootfsPath = options.rootfs ?? defaultRootfs(reference);
  const events = options.events ?? {};
  const warn = (message: string) => events.warn?.(message);
  await RootfsTarget.assertFree(rootfsPath);
  await sweepCacheGarbage(options.cacheDir);

  const client = await readClientFor(options, warn);
  try {
    const image = await client.resolveImage(options.platform ?? hostPlatform(), options.platform !== undefined);
    const layers = image.manifest.layers;
    assertSupportedLayers(layers);
    events.resolved?.({
      reference: formatReference(reference),
      manifestDigest: image.manifestDigest,
      layers: layers.map((l) => ({ digest: l.digest, size: l.size })),
    });

    const target = await RootfsTarget.prepare(rootfsPath);
    const staging = target.staging;

    const downloads = new Map<Digest, BlobDownload>();
    const runs = new Map<Digest, Promise<void>>();
    const limit = limitConcurrency(options.concurrency ?? 3);
    layers.forEach((layer, index) => {
      if (downloads.has(layer.digest)) return;
      const download = new BlobDownload(client, layer.digest, layer.size, cachedBlobPath(options.cacheDir, layer.digest), { log: warn });
      download.on('progress', () => events.downloadProgress?.(index, download.written, layer.size));
      downloads.set(layer.digest, download);
      const run = limit(() => download.run());
      run.then(() => events.downloadDone?.(index, { cached: download.wasCached }), () => undefined);
      runs.set(layer.digest, run);
    });

    const applier = new LayerApplier(staging, { warn });
    const branches = options.git ? await LayerBranchWriter.create(target.rootfs, staging) : undefined;
    const diffIds = options.git ? layerDiffIds(image) : [];
    const indexes = new Map<Digest, LayerIndex>();
    let entries = 0;
    let skipped = 0;
    for (const [index, layer] of layers.entries()) {
      const download = downloads.get(layer.digest)!;
      events.applyStart?.(index);
      try {
        // The layer's index comes for free with the pass: a later mount starts without one.
        const indexer = new StreamingIndexer(layer.digest, layer.size);
        const stats = await applier.applyLayer(indexer.inflate(download.reader()), indexer.onEntry);
        indexes.set(layer.digest, indexer.finish());
        await branches?.commitLayer(index, layer, diffIds[index]!);
        entries += stats.entries;
        skipped += stats.skipped;
        events.applyDone?.(index, stats);
      } catch (err) {
        // Let downloads settle (their partial files stay consistent for a resume), then report
        // the root cause: a blob that failed verification explains any decoding error after it.
        await Promise.allSettled(runs.values());
        await target.abandon();
        throw layerFailure(download.failure ?? err, index, layer.digest);
      }
    }
    await Promise.all(runs.values()).catch(async (err: unknown) => {
      await target.abandon();
      throw err;
    });
    // Saved only now that every blob has passed its digest check.
    const store = new IndexStore(options.cacheDir);
    await Promise.all([...indexes.values()].map((index) => store.save(index).catch((err: unknown) => warn(`could not save the index of ${index.layerDigest}: ${(err as Error).message}`))));

    await branches?.finish(image).catch(async (err: unknown) => {
      await target.abandon();
      throw err;
    });
    await target.commit(image, 'pull');
    await Promise.all([...downloads.values()].map((d) => d.releaseHeldFile()));
    if (!options.keepBlobs) await Promise.all([...downloads.values()].map((d) => rm(d.path, { force: true })));
    return { rootfs: target.rootfs, metadataDir: target.metadataDir, image, layers: layers.length, entries, skipped };
  } finally {
    await client.close();
  }
}

function layerFailure(err: unknown, index: number, digest: Digest): unknown {
  if (!(err instanceof KrgoError) || err.message.includes(digest)) return err;
  return new KrgoError(err.code, `layer ${index + 1} (${digest}): ${err.message}`, { cause: err.cause });
}
