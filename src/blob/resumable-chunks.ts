import { KrgoError } from '../errors.js';
import type { Digest } from '../digest.js';
import type { RegistryClient } from '../registry/client.js';
import { isRetriableNetworkError, sleep } from '../registry/retry.js';
import { SlowTransferError } from '../registry/transfer-rate.js';

export interface ResumeOptions {
  /** Consecutive failures without progress before giving up. */
  maxStalls?: number;
  log?: (message: string) => void;
}

/**
 * A blob's bytes from `start` to its declared end, reopening with a Range request from the last
 * byte received whenever the connection drops. The caller verifies the digest.
 */
export async function* resumableChunks(client: RegistryClient, digest: Digest, size: number, start: number, options: ResumeOptions = {}): AsyncGenerator<Buffer> {
  let position = start;
  let stalls = 0;
  const maxStalls = options.maxStalls ?? 8;
  while (position < size) {
    const before = position;
    try {
      const blob = await client.openBlob(digest, position);
      for await (const chunk of blob.chunks) {
        if (position + chunk.length > size) {
          blob.cancel();
          throw new KrgoError('SIZE_MISMATCH', `blob ${digest} is larger than its declared ${size} bytes`);
        }
        position += chunk.length;
        yield chunk;
      }
      if (position < size && position === before) throw new KrgoError('NETWORK', `blob ${digest} ended early at byte ${position}`);
    } catch (err) {
      if (err instanceof KrgoError && err.code !== 'NETWORK') throw err;
      if (!(err instanceof KrgoError) && !isRetriableNetworkError(err)) throw err;
      // A connection that moved a little before it failed is progress; one too slow to be of use
      // (a trickle) counts as three stalls, so a registry trickling bytes is given up in minutes.
      stalls = err instanceof SlowTransferError ? stalls + 3 : position > before ? 0 : stalls + 1;
      if (stalls >= maxStalls) throw new KrgoError('NETWORK', `download of ${digest} keeps failing at byte ${position}`, { cause: err });
      options.log?.(`connection lost at byte ${position} of ${digest.slice(0, 19)}; resuming`);
      await sleep(Math.min(200 * 2 ** stalls, 5000));
    }
  }
}
