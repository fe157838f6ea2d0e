import type { Digest } from '../digest.js';
import type { SeekPoint } from '../gzip/gzip-index.js';
import type { TarEntry } from '../tar/tar-entry.js';
import type { WindowTable } from './window-table.js';

/**
 * 3: seek windows in a blob of their own (2 had them in the body, 1 had a gzip body). Files of
 * another version are rebuilt, never read.
 */
export const INDEX_FORMAT_VERSION = 3;

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
  /** Uncompressed bytes between gzip checkpoints (0 when there are none). */
  span: number;
  entries: TarEntry[];
  checkpoints: SeekPoint[];
  /** The checkpoints' windows, one per checkpoint, fetched apart (see window-table.ts). */
  windows: WindowTable;
  /** eStargz: where the TOC's gzip member starts (the data members end there). */
  tocOffset?: number;
}
