import type { Digest } from '../digest.js';
import type { ApplyStats } from '../materialize/layer-applier.js';

/** What a pull reports as it goes; the CLI renders it, tests may record it. */
export interface PullEvents {
  resolved?(info: { reference: string; manifestDigest: Digest; layers: { digest: Digest; size: number }[] }): void;
  downloadProgress?(layer: number, bytes: number, total: number): void;
  /** `cached`: the blob was complete in the cache, nothing was downloaded. */
  downloadDone?(layer: number, info: { cached: boolean }): void;
  applyStart?(layer: number): void;
  applyDone?(layer: number, stats: ApplyStats): void;
  /** Warnings (skipped entries, retries); never fatal. */
  warn?(message: string): void;
}
