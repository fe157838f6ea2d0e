import { Transform, type TransformCallback } from 'node:stream';
import { Decompress as ZstdDecompress } from 'fzstd';
import { KrgoError } from '../errors.js';
import type { Compression } from '../image/media-types.js';

/** Compression told by the first bytes; media types are often wrong about it. */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Streaming zstd through fzstd (pure JS): Node 20's zlib has no zstd. */
class ZstdTransform extends Transform {
  private readonly decoder = new ZstdDecompress((chunk) => {
    this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  });
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.decoder.push(chunk);
      done();
    } catch (err) {
      done(new KrgoError('BAD_TAR', `zstd data is corrupt: ${(err as Error).message}`));
    }
  }
  override _flush(done: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true);
      done();
    } catch (err) {
      done(new KrgoError('BAD_TAR', `zstd data is corrupt: ${(err as Error).message}`));
    }
  }
}

/**
 * Decompresses a zstd layer stream (gzip goes through the native zran inflater instead,
 * which also records seek points). Yields the uncompressed tar bytes.
 */
export async function* decompressZstd(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  const decoder = new ZstdTransform();
  // Resolves on drain, or when the consumer gave up and the decoder was destroyed.
  const writable = (): Promise<void> =>
    new Promise((resolve) => {
      const done = () => {
        decoder.off('drain', done);
        decoder.off('close', done);
        resolve();
      };
      decoder.once('drain', done);
      decoder.once('close', done);
    });
  const feed = (async () => {
    try {
      for (let n = await iterator.next(); !n.done && !decoder.destroyed; n = await iterator.next()) {
        if (!decoder.write(n.value)) await writable();
      }
      if (!decoder.destroyed) decoder.end();
    } catch (err) {
      decoder.destroy(err as Error);
    }
  })();
  try {
    for await (const chunk of decoder) yield chunk as Buffer;
  } finally {
    decoder.destroy();
    await feed;
    await iterator.return?.();
  }
}
