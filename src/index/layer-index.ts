import { verifyChunks, type Digest } from '../digest.js';
import { decompressZstd, sniffCompression } from '../compression/decompress.js';
import { DEFAULT_GRID, DEFAULT_WINDOW_SPACING, GzipIndexBuilder } from '../gzip/gzip-index.js';
import { packWindow, tableOf, type PackedWindow } from './window-table.js';
import { INDEX_FORMAT_VERSION, type LayerFormat, type LayerIndex } from './index-format.js';
import { parseTar } from '../tar/tar-parser.js';
import { fileDeps } from './file-hints.js';
import type { TarEntry } from '../tar/tar-entry.js';

export { INDEX_FORMAT_VERSION, type LayerFormat, type LayerIndex } from './index-format.js';

/** How dense a gzip layer's seek points are, and how far apart those with a window (gzip-index.ts). */
export interface SeekDensity {
  grid?: number;
  windowSpacing?: number;
}

/** Prepends the bytes already read for sniffing back onto the stream. */
async function* withHead(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for (let n = await rest.next(); !n.done; n = await rest.next()) yield n.value;
}

/**
 * Builds a layer's index in one streaming pass over its compressed bytes (verified against the
 * digest). Gzip layers get seek points on a grid (`density`); zstd layers are indexed by a full
 * decompression pass and read by decompressing from the start (no seek points).
 */
export async function buildLayerIndex(source: AsyncIterable<Buffer>, digest: Digest, size: number, density: SeekDensity = {}): Promise<LayerIndex> {
  // parseTar reads to the end of the stream, so the digest check at its end always runs.
  return (await indexLayerStream(verifyChunks(source, digest, size, 'layer'), density))(digest, size);
}

/**
 * Indexes a layer's compressed bytes as they are made, before their digest is known (a layer
 * being written): the result is completed with the digest and size once they are.
 */
export async function indexLayerStream(source: AsyncIterable<Buffer>, density: SeekDensity = {}): Promise<(digest: Digest, size: number) => LayerIndex> {
  const indexer = new StreamingIndexer(undefined, 0, density);
  await parseTar(indexer.inflate(source), async (entry, data) => {
    const deps = await fileDeps(entry, data);
    indexer.onEntry(deps ? { ...entry, deps } : entry);
  });
  return (digest, size) => indexer.finish(digest, size);
}

/**
 * Decompresses a layer stream for a consumer that parses the tar itself (the pull), keeping what
 * an index needs: gzip checkpoints here, entries through `onEntry`. The digest is the caller's
 * to check before the index is saved.
 */
export class StreamingIndexer {
  private readonly entries: TarEntry[] = [];
  private gzip: GzipIndexBuilder | undefined;
  private format: LayerFormat = 'tar';
  private uncompressed = 0;

  constructor(
    private readonly digest: Digest | undefined,
    private readonly size: number,
    private readonly density: SeekDensity = {},
  ) {}

  readonly onEntry = (entry: TarEntry): void => {
    this.entries.push(entry);
  };

  async *inflate(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const iterator = source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let headBytes = 0;
    while (headBytes < 4) {
      const next = await iterator.next();
      if (next.done) break;
      head.push(next.value);
      headBytes += next.value.length;
    }
    const compression = sniffCompression(head.length === 1 ? head[0]! : Buffer.concat(head));
    const stream = withHead(head, iterator);
    let tar: AsyncIterable<Buffer>;
    if (compression === 'gzip') {
      this.format = 'gzip';
      this.gzip = new GzipIndexBuilder(this.density.grid ?? DEFAULT_GRID, this.density.windowSpacing ?? DEFAULT_WINDOW_SPACING);
      tar = this.gzip.inflate(stream);
    } else if (compression === 'zstd') {
      this.format = 'zstd';
      tar = decompressZstd(stream);
    } else tar = stream;
    for await (const chunk of tar) {
      this.uncompressed += chunk.length;
      this.packNewWindows();
      yield chunk;
    }
  }

  /** The keyed points' windows, packed as they come (their raw 32 KiB is dropped at once). */
  private readonly packed: PackedWindow[] = [];
  private readonly keyed: boolean[] = [];

  private packNewWindows(): void {
    const points = this.gzip?.checkpoints ?? [];
    for (let i = this.keyed.length; i < points.length; i++) {
      const point = points[i]!;
      this.keyed.push(point.window !== undefined);
      if (point.window) this.packed.push(packWindow(point.window));
      delete point.window;
    }
  }

  /** The index; `digest` and `size` when they were not known at the start. */
  finish(digest: Digest | undefined = this.digest, size: number = this.size): LayerIndex {
    if (!digest) throw new Error('StreamingIndexer.finish: the layer digest is not known');
    this.packNewWindows();
    const checkpoints = this.gzip?.checkpoints ?? [];
    let keyed = 0;
    return {
      version: INDEX_FORMAT_VERSION,
      layerDigest: digest,
      compressedSize: size,
      uncompressedSize: this.uncompressed,
      format: this.format,
      grid: this.gzip ? this.gzip.grid : 0,
      windowSpacing: this.gzip ? this.gzip.windowSpacing : 0,
      entries: this.entries,
      checkpoints: checkpoints.map(({ compressedOffset, bits, uncompressedOffset }, i) => ({ compressedOffset, bits, uncompressedOffset, window: this.keyed[i] ? keyed++ : -1 })),
      windows: tableOf(this.packed),
    };
  }
}
