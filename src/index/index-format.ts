import type { Digest } from '../digest.js';
import type { SeekPoint } from '../gzip/gzip-index.js';
import type { TarEntry } from '../tar/tar-entry.js';
import type { WindowTable } from './window-table.js';

/**
 * 6: as 5, with access times in columns and windows named by length and a 128-bit hash.
 * 5: entries and seek points in columns (entry-columns.ts). 4 had one tuple per entry, and seek
 * points on a fine grid with windows for some of them only; 3 a window for every point, about
 * 1 MiB apart; 2 the windows in the body, 1 a gzip body. Versions 3 and 4 are still read (3 as
 * an index whose every point is keyed); older ones are rebuilt.
 */
export const INDEX_FORMAT_VERSION = 6;
/** Formats of krgo before, still read (from registries, and converted when met in a cache), newest first. */
export const LEGACY_INDEX_VERSIONS: readonly number[] = [5, 4, 3];
export const READABLE_INDEX_VERSIONS: readonly number[] = [INDEX_FORMAT_VERSION, ...LEGACY_INDEX_VERSIONS];
/** Cache files of an older format than this are garbage. */
export const OLDEST_READABLE_INDEX_VERSION = Math.min(...READABLE_INDEX_VERSIONS);

/** A seek point of an index: `window` is its window's number in the index's WindowTable, -1 when it has none. */
export interface IndexPoint extends SeekPoint {
  window: number;
}

export type LayerFormat = 'gzip' | 'tar' | 'zstd' | 'estargz';

/**
 * Everything needed to present a layer without its bytes: every tar entry with its data offset
 * in the uncompressed stream, and for gzip layers the checkpoints to read from the middle.
 */
export interface LayerIndex {
  version: typeof INDEX_FORMAT_VERSION;
  layerDigest: Digest;
  compressedSize: number;
  uncompressedSize: number;
  format: LayerFormat;
  /** Least uncompressed bytes between gzip seek points (0 when there are none). */
  grid: number;
  /** Least uncompressed bytes between seek points that keep a window. */
  windowSpacing: number;
  entries: TarEntry[];
  checkpoints: IndexPoint[];
  /** The keyed points' windows, fetched apart (see window-table.ts). */
  windows: WindowTable;
  /** eStargz: where the TOC's gzip member starts (the data members end there). */
  tocOffset?: number;
}
