import type { Digest } from '../../digest.js';
import type { LayerIndex } from '../../index/index-format.js';
import type { BlobRange, RangeSource } from '../../blob/range-source.js';
import type { SpanCache } from '../../cache/span-cache.js';
import type { WindowTable } from '../../index/window-table.js';

/** A seek window from a table other than the index's own (an access profile's): its table and number. */
export interface ExtraWindow {
  table: WindowTable;
  w: number;
}

/** A piece of a layer a reader fetches, decodes and caches as one: its ranges in both streams. */
export interface Span {
  /** Uncompressed range. */
  out: number;
  outEnd: number;
  /** Compressed range that holds it. */
  in: number;
  inEnd: number;
}

/** What a format's fetcher may use of the reader it serves. */
export interface SpanContext {
  index: LayerIndex;
  source: RangeSource;
  cache: SpanCache;
  /** Span `i` when it is at hand or on its way (memory, in flight, disk), without fetching it. */
  findSpan(i: number): Promise<Buffer | undefined>;
  /** What span `i` is: a disk file must be sealed with exactly this to serve it. */
  binding(i: number): string;
  onBackgroundError(err: unknown): void;
  layerDigest: Digest;
  /** Windows for spans whose seek point the index keeps none for (index/profile-windows.ts), by span. */
  extraWindows: Map<number, ExtraWindow>;
}

/**
 * One compressed format behind the span reader: how the layer is cut into spans, and how a run
 * of adjacent missing spans is fetched and decoded. `deliver` takes each span as soon as it is
 * decoded; a fetcher may deliver spans before the run it was asked for (the lead-in it had to
 * decode to reach it) and the reader keeps those too.
 */
export interface SpanFormat {
  readonly spans: readonly Span[];
  /** `background`: nobody waits on it yet (a replay, a prefetch): its requests may wait to be shared. */
  fetch(run: readonly number[], deliver: (i: number, data: Buffer) => void, background: boolean): Promise<void>;
  /**
   * Compressed bytes a fetch starting at span `i` costs beyond the span's own (a window, a
   * lead-in), when nothing before it is cached: what fetching the gap to an earlier run instead
   * is weighed against. Absent: nothing.
   */
  startCost?(i: number): number;
  /** Whether a fetch starting at span `i` needs a window it has not got (gzip: one an access profile may bring). */
  needsWindow?(i: number): boolean;
  /** Where the window a fetch starting at span `i` reads by range lies (gzip: the index's own, in its windows blob), if it reads one. */
  windowPlaceAt?(i: number): BlobRange | undefined;
}

/** The most one span may inflate to: only a crafted stream (a bomb) has more between two seek points. */
export const MAX_SPAN_OUTPUT = 64 * 1024 * 1024;
