import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { KrgoError } from '../../errors.js';
import type { StargzChunk } from '../../tar/tar-entry.js';
import type { SpanContext } from './span-format.js';

/**
 * eStargz: a file's bytes from its chunks. Each chunk's gzip member is fetched once (members end
 * where the next begins), inflated, cached, and its chunk checked against the TOC's chunk
 * digest before use.
 */
export class StargzChunks {
  private memberStarts: number[] | undefined;

  constructor(private readonly ctx: SpanContext) {}

  /** Bytes [fileOffset, fileOffset+length) of a file made of `chunks`. */
  async read(chunks: readonly StargzChunk[], fileOffset: number, length: number): Promise<Buffer> {
    const end = fileOffset + length;
    const wanted = chunks.filter((c) => c.fileOffset < end && c.fileOffset + c.size > fileOffset);
    const parts = await Promise.all(
      wanted.map(async (c) => {
        const data = await this.chunk(c);
        return data.subarray(Math.max(fileOffset, c.fileOffset) - c.fileOffset, Math.min(end, c.fileOffset + c.size) - c.fileOffset);
      }),
    );
    return Buffer.concat(parts);
  }

  private memberEnd(memberOffset: number): number {
    const { index } = this.ctx;
    this.memberStarts ??= [...new Set([...index.entries.flatMap((e) => (e.chunks ?? []).map((c) => c.memberOffset)), index.tocOffset ?? index.compressedSize])].sort((a, b) => a - b);
    const starts = this.memberStarts;
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= memberOffset) lo = mid + 1;
      else hi = mid;
    }
    return starts[lo] ?? index.compressedSize;
  }

  private chunk(c: StargzChunk): Promise<Buffer> {
    const { index, cache, source } = this.ctx;
    const key = `${index.layerDigest}:c${c.memberOffset}:${c.innerOffset}:${c.size}`;
    const known = cache.lookup(key);
    if (known) return known;
    const fetch = (async () => {
      const end = c.memberOffset === index.tocOffset ? index.compressedSize : this.memberEnd(c.memberOffset);
      const member = gunzipSync(await source.read(index.layerDigest, c.memberOffset, end));
      const data = member.subarray(c.innerOffset, c.innerOffset + c.size);
      if (data.length !== c.size) throw new KrgoError('BAD_TAR', `layer ${index.layerDigest}: chunk at member ${c.memberOffset} is short`);
      if (c.digest && c.digest !== `sha256:${createHash('sha256').update(data).digest('hex')}`) {
        throw new KrgoError('DIGEST_MISMATCH', `layer ${index.layerDigest}: chunk at member ${c.memberOffset} does not match its TOC digest ${c.digest}`);
      }
      return Buffer.from(data);
    })();
    return cache.share(key, fetch);
  }
}
