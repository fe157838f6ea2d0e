import { verifyChunks, type Digest } from '../digest.js';
import { decompressZstd, sniffCompression } from '../compression/decompress.js';
import { DEFAULT_GRID, DEFAULT_WINDOW_SPACING, GzipIndexBuilder, pointByte, type SeekPoint } from '../gzip/gzip-index.js';
import { packWindow, tableOf, WINDOW_BYTES, type PackedWindow } from './window-table.js';
import { referencedWindow } from '../gzip/window-references.js';
import { rangeReader } from '../util/join-pieces.js';
import { INDEX_FORMAT_VERSION, type LayerFormat, type LayerIndex } from './index-format.js';
import { parseTar } from '../tar/tar-parser.js';
import { fileDeps } from './file-hints.js';
import type { TarEntry } from '../tar/tar-entry.js';

export { INDEX_FORMAT_VERSION, type LayerFormat, type LayerIndex } from './index-format.js';

/** How dense a gzip layer's seek points are, and how far apart those with a window (gzip-index.ts). */
export interface SeekDensity {
  grid?: number;
  windowSpacing?: number;
  /**
   * Keep of each window only the bytes the stream after its point copies, the rest zeroed
   * (window-references.ts): a fifth of the size once deflated. For indexes pushed to a registry,
   * whose windows mounts fetch; it costs a second decode of 32 KiB per window while building.
   */
  sparseWindows?: boolean;
}

/**
 * How indexes pushed to a registry are built: mounts fetch their windows by range, and a
 * sparse one is a fifth of a whole one, so they can be twice as dense (a fetch's lead-in
 * halves) in a third of the bytes (native-notes/gzip-random-access.md has the measurements).
 */
export const PUSHED_SEEK_DENSITY: SeekDensity = { windowSpacing: 64 * 1024, sparseWindows: true };

/**
 * Whether an index is as one built for a registry is (PUSHED_SEEK_DENSITY): a gzip layer's index
 * a mount or a pull built here keeps whole windows, further apart. Others have no windows.
 */
export function isPushedForm(index: LayerIndex): boolean {
  return index.format !== 'gzip' || index.windowSpacing === PUSHED_SEEK_DENSITY.windowSpacing;
}

/** A keyed point's window waiting for the 32 KiB of output after its point (sparse windows). */
interface PendingWindow {
  slot: number;
  point: SeekPoint;
  window: Buffer;
  output: Buffer[];
  outputBytes: number;
}

/** Compressed bytes handed to the window decoder at most: 32 KiB of output takes ~33 KiB even stored. */
const MAX_SPARSE_INPUT = 128 * 1024;

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
      tar = this.gzip.inflate(this.density.sparseWindows ? this.keepCompressed(stream) : stream);
    } else if (compression === 'zstd') {
      this.format = 'zstd';
      tar = decompressZstd(stream);
    } else tar = stream;
    for await (const chunk of tar) {
      this.packNewWindows();
      if (this.pending.length) this.feedPending(chunk);
      this.uncompressed += chunk.length;
      yield chunk;
    }
  }

  /** The keyed points' windows, packed as they come (their raw 32 KiB is dropped at once), or once the output after them is in (sparse). */
  private readonly packed: (PackedWindow | undefined)[] = [];
  private readonly keyed: boolean[] = [];
  private readonly pending: PendingWindow[] = [];
  /** The compressed stream's recent chunks (sparse windows), the first starting at `compressedBase`. */
  private compressed: Buffer[] = [];
  private compressedBase = 0;

  private packNewWindows(): void {
    const points = this.gzip?.checkpoints ?? [];
    for (let i = this.keyed.length; i < points.length; i++) {
      const point = points[i]!;
      this.keyed.push(point.window !== undefined);
      if (point.window && this.density.sparseWindows && point.window.length === WINDOW_BYTES) {
        this.pending.push({ slot: this.packed.length, point, window: point.window, output: [], outputBytes: 0 });
        this.packed.push(undefined);
      } else if (point.window) this.packed.push(packWindow(point.window));
      delete point.window;
    }
    // What a window waiting, or the next one (after the last point), may start in.
    const last = points[points.length - 1];
    if (this.density.sparseWindows) this.dropCompressedBefore(this.pending[0] ? pointByte(this.pending[0].point) : last ? last.compressedOffset - 1 : 0);
  }

  /** The compressed stream on its way to the inflater, its recent chunks kept for the window decoder. */
  private async *keepCompressed(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      this.compressed.push(chunk);
      yield chunk;
    }
  }

  private dropCompressedBefore(offset: number): void {
    while (this.compressed.length > 1 && this.compressedBase + this.compressed[0]!.length <= offset) this.compressedBase += this.compressed.shift()!.length;
  }

  /** Output chunk `chunk` (starting at `this.uncompressed`) to the windows waiting for it; those with their 32 KiB are packed. */
  private feedPending(chunk: Buffer): void {
    const start = this.uncompressed;
    for (const p of this.pending) {
      const from = Math.max(p.point.uncompressedOffset, start) - start;
      const take = Math.min(chunk.length - from, WINDOW_BYTES - p.outputBytes);
      if (take <= 0) continue;
      p.output.push(chunk.subarray(from, from + take));
      p.outputBytes += take;
    }
    while (this.pending[0] && this.pending[0].outputBytes >= WINDOW_BYTES) this.packPending(this.pending.shift()!);
  }

  private packPending(p: PendingWindow): void {
    // Kept from its point on (dropCompressedBefore), unless the point came before what was kept.
    const at = pointByte(p.point);
    const sparse = at >= this.compressedBase ? referencedWindow(p.window, rangeReader(this.compressed)(at - this.compressedBase, MAX_SPARSE_INPUT), p.point.bits, Buffer.concat(p.output)) : undefined;
    this.packed[p.slot] = packWindow(sparse ?? p.window);
  }

  /** The index; `digest` and `size` when they were not known at the start. */
  finish(digest: Digest | undefined = this.digest, size: number = this.size): LayerIndex {
    if (!digest) throw new Error('StreamingIndexer.finish: the layer digest is not known');
    this.packNewWindows();
    // The stream ended less than 32 KiB after these points: what came after them is all there is.
    for (const p of this.pending.splice(0)) this.packPending(p);
    this.compressed = [];
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
      windows: tableOf(this.packed as PackedWindow[]),
    };
  }
}
