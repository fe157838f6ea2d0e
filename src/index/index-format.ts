import type { Digest } from '../digest.js';
import type { SeekPoint } from '../gzip/gzip-index.js';
import type { TarEntry } from '../tar/tar-entry.js';
import type { WindowTable } from './window-table.js';

/**
 * 4: seek points on a fine grid, windows for some of them only (3 had a window for every point,
 * about 1 MiB apart; 2 had the windows in the body, 1 a gzip body). Version 3 files are still
 * read (as an index whose every point is keyed); older ones are rebuilt.
 */
export const INDEX_FORMAT_VERSION = 4;
/** The format of the krgo before, still read (from registries, and converted when met in a cache). */
export const LEGACY_INDEX_VERSION = 3;

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
