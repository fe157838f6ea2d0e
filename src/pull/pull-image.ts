import { mkdir, readdir, rename, rm, stat, writeFile, chmod, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { digestHex, type Digest } from '../digest.js';
import { BlobDownload } from '../blob/blob-download.js';
import { decompressLayer } from '../compression/decompress.js';
import { layerCompression } from '../image/media-types.js';
import { hostPlatform } from '../image/platform.js';
import { LayerApplier } from '../materialize/layer-applier.js';
import type { ResolvedImage } from '../registry/client.js';
import { clientFor, type ImageSource } from '../registry/image-source.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { limitConcurrency } from '../util/concurrency.js';
import type { PullEvents } from './pull-events.js';

export interface PullOptions extends ImageSource {
  /** Defaults to the last component of the repository name, as in the original krgo. */
  rootfs?: string;
  /** Layers downloaded at once. */
  concurrency?: number;
  keepBlobs?: boolean;
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

/** krgo's own records sit beside the rootfs, never in it: `.NAME.krgo/`. */
export function metadataDirFor(rootfs: string): string {
  return join(dirname(rootfs), `.${basename(rootfs)}.krgo`);
}

async function assertTargetFree(rootfs: string): Promise<void> {
  const info = await stat(rootfs).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory() || (await readdir(rootfs)).length > 0) {
    throw new KrgoError('TARGET_EXISTS', `${rootfs} already exists and is not an empty directory; remove it or choose another with -r`);
  }
}

/**
 * The eager path: downloads every layer (in parallel, resumable, verified) and applies them in
 * order as they stream in, into a staging directory renamed into place only when all is done.
 */
export async function pullImage(options: PullOptions): Promise<PullResult> {
  const reference = parseReference(options.image);
  const rootfs = resolve(options.rootfs ?? reference.repository.split('/').pop()!);
  const events = options.events ?? {};
  const warn = (message: string) => events.warn?.(message);
  await assertTargetFree(rootfs);

  const client = clientFor(options, warn);
  try {
    const image = await client.resolveImage(options.platform ?? hostPlatform());
    const layers = image.manifest.layers;
    for (const layer of layers) {
      if (layerCompression(layer.mediaType) === undefined) {
        throw new KrgoError('UNSUPPORTED_MEDIA_TYPE', `layer ${layer.digest} has media type ${layer.mediaType}, which krgo cannot apply`);
      }
    }
    events.resolved?.({
      reference: formatReference(reference),
      manifestDigest: image.manifestDigest,
      layers: layers.map((l) => ({ digest: l.digest, size: l.size })),
    });

    const metadataDir = metadataDirFor(rootfs);
    const staging = join(metadataDir, 'rootfs.partial');
    await rm(staging, { recursive: true, force: true });
    await unlink(join(metadataDir, 'image.json')).catch(() => undefined);
    await mkdir(staging, { recursive: true, mode: 0o755 });
    await chmod(staging, 0o755);

    const downloads = new Map<Digest, BlobDownload>();
    const runs = new Map<Digest, Promise<void>>();
    const limit = limitConcurrency(options.concurrency ?? 3);
    layers.forEach((layer, index) => {
      if (downloads.has(layer.digest)) return;
      const download = new BlobDownload(client, layer.digest, layer.size, join(options.cacheDir, 'blobs', 'sha256', digestHex(layer.digest)), { log: warn });
      download.on('progress', () => events.downloadProgress?.(index, download.written, layer.size));
      downloads.set(layer.digest, download);
      const run = limit(() => download.run());
      run.then(() => events.downloadDone?.(index), () => undefined);
      runs.set(layer.digest, run);
    });

    const applier = new LayerApplier(staging, { warn });
    let entries = 0;
    let skipped = 0;
    for (const [index, layer] of layers.entries()) {
      const download = downloads.get(layer.digest)!;
      events.applyStart?.(index);
      try {
        const stats = await applier.applyLayer(decompressLayer(download.reader()));
        entries += stats.entries;
        skipped += stats.skipped;
        events.applyDone?.(index, stats);
      } catch (err) {
        // Let downloads settle (their partial files stay consistent for a resume), then report
        // the root cause: a blob that failed verification explains any decoding error after it.
        await Promise.allSettled(runs.values());
        throw layerFailure(download.failure ?? err, index, layer.digest);
      }
    }
    await Promise.all(runs.values());

    await writeFile(join(metadataDir, 'manifest.json'), image.manifestBytes);
    await writeFile(join(metadataDir, 'config.json'), image.configBytes);
    await rename(staging, rootfs).catch((err: NodeJS.ErrnoException) => {
      throw new KrgoError('TARGET_EXISTS', `cannot move the pulled tree into ${rootfs} (${err.code}); it is kept in ${staging}`, { cause: err });
    });
    const record = {
      reference: formatReference(reference),
      manifestDigest: image.manifestDigest,
      ...(image.indexDigest ? { indexDigest: image.indexDigest } : {}),
      ...(image.platform ? { platform: image.platform } : {}),
      layers: layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
      rootfs,
      pulledAt: new Date().toISOString(),
    };
    // Written last: its presence says the rootfs is complete.
    await writeFile(join(metadataDir, 'image.json'), `${JSON.stringify(record, null, 2)}\n`);
    if (!options.keepBlobs) await Promise.all([...downloads.values()].map((d) => rm(d.path, { force: true })));
    return { rootfs, metadataDir, image, layers: layers.length, entries, skipped };
  } finally {
    await client.close();
  }
}

function layerFailure(err: unknown, index: number, digest: Digest): unknown {
  if (!(err instanceof KrgoError) || err.message.includes(digest)) return err;
  return new KrgoError(err.code, `layer ${index + 1} (${digest}): ${err.message}`, { cause: err.cause });
}
