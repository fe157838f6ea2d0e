import { KrgoError } from '../errors.js';
import { networkTimeoutScale } from './timeouts.js';

/** Below this rate, over a window of waiting, a transfer is given up (a stall or a trickle). */
export const MIN_BYTES_PER_SECOND = 1024;
export const RATE_WINDOW_MS = 20_000 * networkTimeoutScale();

const WAITING = Symbol('waiting');

export class SlowTransferError extends KrgoError {
  constructor(what: string, bytes: number, ms: number) {
    super('NETWORK', `${what}: ${bytes} bytes in ${Math.round(ms / 1000)} s, slower than ${MIN_BYTES_PER_SECOND} bytes/s; giving up on this connection`);
  }
}

/**
 * Yields a response body's chunks, failing it when it delivers less than MIN_BYTES_PER_SECOND
 * over RATE_WINDOW_MS of waiting for it. Only time spent waiting counts: a consumer that reads
 * slowly (backpressure) is never blamed on the server. undici's bodyTimeout alone restarts on
 * every byte, so a server trickling a byte a second would hold a client forever.
 */
export async function* watchTransferRate(body: AsyncIterable<unknown>, cancel: () => void, what: string): AsyncGenerator<Buffer> {
  const iterator = body[Symbol.asyncIterator]();
  let waited = 0;
  let bytes = 0;
  let pending: Promise<IteratorResult<unknown>> | undefined;
  try {
    for (;;) {
      pending ??= iterator.next();
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([pending, new Promise<typeof WAITING>((r) => (timer = setTimeout(() => r(WAITING), Math.max(1, RATE_WINDOW_MS - waited))))]);
      clearTimeout(timer);
      waited += Date.now() - started;
      if (waited >= RATE_WINDOW_MS) {
        if ((bytes * 1000) / waited < MIN_BYTES_PER_SECOND) throw new SlowTransferError(what, bytes, waited);
        waited = 0;
        bytes = 0;
      }
      if (result === WAITING) continue;
      pending = undefined;
      if (result.done) return;
      const chunk = result.value as Buffer;
      bytes += chunk.length;
      yield chunk;
    }
  } catch (err) {
    cancel();
    throw err;
  } finally {
    if (pending) pending.catch(() => undefined);
  }
}
