import { KrgoError } from '../../errors.js';
import type { Span, SpanContext, SpanFormat } from './span-format.js';

/** Spans of formats without seek points of their own: fixed slices of the uncompressed stream. */
export const SLICE_BYTES = 1024 * 1024;

export function slicesOf(uncompressedSize: number, compressed: (out: number, outEnd: number) => [number, number]): Span[] {
  const spans: Span[] = [];
  for (let out = 0; out < Math.max(uncompressedSize, 1); out += SLICE_BYTES) {
    const outEnd = Math.min(out + SLICE_BYTES, uncompressedSize);
    const [start, end] = compressed(out, outEnd);
    spans.push({ out, outEnd, in: start, inEnd: end });
  }
  return spans;
}

/** An uncompressed tar layer: each slice is its own bytes, read by range. */
export class TarSlices implements SpanFormat {
  readonly spans: Span[];

  constructor(private readonly ctx: SpanContext) {
    this.spans = slicesOf(ctx.index.uncompressedSize, (out, outEnd) => [out, outEnd]);
  }

  async fetch(run: readonly number[], deliver: (i: number, data: Buffer) => void, background: boolean): Promise<void> {
    const first = this.spans[run[0]!]!;
    const last = this.spans[run[run.length - 1]!]!;
    let next = 0;
    const arrived = (data: Buffer, filled: number) => {
      while (next < run.length && filled >= this.spans[run[next]!]!.inEnd - first.in) {
        const span = this.spans[run[next]!]!;
        deliver(run[next]!, data.subarray(span.in - first.in, span.inEnd - first.in));
        next++;
      }
    };
    const data = await this.ctx.source.read(this.ctx.layerDigest, first.in, last.inEnd, { onProgress: arrived, background });
    arrived(data, data.length);
    if (next < run.length) throw new KrgoError('BAD_TAR', `layer ${this.ctx.layerDigest}: range ${first.in}-${last.inEnd} ended early`);
  }
}
