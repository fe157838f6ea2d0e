import { decompress as zstdDecompress } from 'fzstd';
import { KrgoError } from '../../errors.js';
import { slicesOf } from './tar-slices.js';
import type { Span, SpanContext, SpanFormat } from './span-format.js';

/** zstd layers have no seek points: decoded whole (once, into slices on disk), up to this. */
const MAX_WHOLE_LAYER_OUTPUT = 1024 * 1024 * 1024;

/**
 * A zstd layer: fetched and decoded once, whole, and cut into slices; every slice goes to the
 * disk cache, so later reads (this mount's or another's) are served from disk instead of
 * decoding the layer again.
 */
export class ZstdWhole implements SpanFormat {
  readonly spans: Span[];
  /** The layer being decoded (shared by every fetch meanwhile; dropped once its slices are stored). */
  private whole: Promise<Buffer> | undefined;

  constructor(private readonly ctx: SpanContext) {
    this.spans = slicesOf(ctx.index.uncompressedSize, () => [0, ctx.index.compressedSize]);
  }

  async fetch(run: readonly number[], deliver: (i: number, data: Buffer) => void): Promise<void> {
    let absent = [...run];
    // A decode that finished while the reader looked at the disk has stored every slice by now
    // (`whole` is dropped only then): look again before decoding the layer a second time.
    if (!this.whole && this.ctx.cache.disk) {
      const again = await Promise.all(absent.map((i) => this.ctx.cache.disk!.get(this.ctx.layerDigest, i, this.ctx.binding(i))));
      absent.forEach((i, k) => again[k] && deliver(i, again[k]!));
      absent = absent.filter((_i, k) => !again[k]);
    }
    if (absent.length === 0) return;
    const whole = await (this.whole ??= this.decode());
    // Copies: a slice must not keep the whole decoded layer alive in the memory cache.
    for (const i of absent) deliver(i, Buffer.from(whole.subarray(this.spans[i]!.out, this.spans[i]!.outEnd)));
  }

  private async decode(): Promise<Buffer> {
    const { index } = this.ctx;
    if (index.uncompressedSize > MAX_WHOLE_LAYER_OUTPUT) {
      throw new KrgoError('TOO_LARGE', `zstd layer ${index.layerDigest.slice(0, 19)} decodes to ${index.uncompressedSize} bytes, more than the ${MAX_WHOLE_LAYER_OUTPUT} a zstd layer may (it has no seek points)`);
    }
    let whole: Buffer;
    try {
      const plain = zstdDecompress(await this.ctx.source.read(index.layerDigest, 0, index.compressedSize));
      whole = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
      if (whole.length !== index.uncompressedSize) {
        throw new KrgoError('BAD_TAR', `layer ${index.layerDigest}: decoded to ${whole.length} bytes, expected ${index.uncompressedSize}`);
      }
    } catch (err) {
      this.whole = undefined;
      throw err;
    }
    // The slices go to disk after the readers have theirs; the decoded layer is shared until then.
    void (async () => {
      const disk = this.ctx.cache.disk;
      if (!disk) return;
      // Views of the decoded layer, written as the store's puts pause (or at once past its bound).
      await Promise.all(this.spans.map((span, i) => disk.put(index.layerDigest, i, this.ctx.binding(i), whole.subarray(span.out, span.outEnd)).catch((err: unknown) => this.ctx.onBackgroundError(err))));
    })().finally(() => (this.whole = undefined));
    return whole;
  }
}
