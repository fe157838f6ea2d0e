import { verifyChunks, type Digest } from '../digest.js';
import { decompressZstd, sniffCompression } from '../compression/decompress.js';
import { DEFAULT_SPAN, GzipIndexBuilder } from '../gzip/gzip-index.js';
import { packWindows } from './window-table.js';
import { INDEX_FORMAT_VERSION, type LayerFormat, type LayerIndex } from './index-format.js';
import { parseTar } from '../tar/tar-parser.js';
import type { TarEntry } from '../tar/tar-entry.js';

export { INDEX_FORMAT_VERSION, type LayerFormat, type LayerIndex } from './index-format.js';

/** Prepends the bytes already read for sniffing back onto the stream. */
async function* withHead(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for (let n = await rest.next(); !n.done; n = await rest.next()) yield n.value;
}

/**
 * Builds a layer's index in one streaming pass over its compressed bytes (verified against the
 * digest). Gzip layers get checkpoints every `span` bytes; zstd layers are indexed by a full
 * decompression pass and read by decompressing from the start (no seek points).
 */
export async function buildLayerIndex(source: AsyncIterable<Buffer>, digest: Digest, size: number, span = DEFAULT_SPAN): Promise<LayerIndex> {
  const indexer = new StreamingIndexer(digest, size, span);
  // parseTar reads to the end of the stream, so the digest check at its end always runs.
  await parseTar(indexer.inflate(verifyChunks(source, digest, size, 'layer')), indexer.onEntry);
  return indexer.finish();
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
    private readonly digest: Digest,
    private readonly size: number,
    private readonly span = DEFAULT_SPAN,
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
    const compression = sniffCompression(Buffer.concat(head));
    const stream = withHead(head, iterator);
    let tar: AsyncIterable<Buffer>;
    if (compression === 'gzip') {
      this.format = 'gzip';
      this.gzip = new GzipIndexBuilder(this.span);
      tar = this.gzip.inflate(stream);
    } else if (compression === 'zstd') {
      this.format = 'zstd';
      tar = decompressZstd(stream);
    } else tar = stream;
    for await (const chunk of tar) {
      this.uncompressed += chunk.length;
      yield chunk;
    }
  }

  finish(): LayerIndex {
    const checkpoints = this.gzip?.checkpoints ?? [];
    return {
      version: INDEX_FORMAT_VERSION,
      layerDigest: this.digest,
      compressedSize: this.size,
      uncompressedSize: this.uncompressed,
      format: this.format,
      span: this.gzip ? this.span : 0,
      entries: this.entries,
      checkpoints: checkpoints.map(({ compressedOffset, bits, uncompressedOffset }) => ({ compressedOffset, bits, uncompressedOffset })),
      windows: packWindows(checkpoints.map((c) => c.window)),
    };
  }
}
