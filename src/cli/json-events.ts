import type { PullEvents } from '../pull/pull-events.js';
import type { PullResult } from '../pull/pull-image.js';

/** Download progress lines per layer at most this often (the first and the last always go). */
const PROGRESS_EVERY_MS = 250;

/**
 * `krgo pull --json`: one JSON object per line on stdout for scripts, each with an `event`:
 * resolved, download (bytes so far), downloaded, apply, applied, warning, done. Errors stay on
 * stderr, as text, with the exit code the README lists.
 */
export function jsonPullEvents(stream: NodeJS.WritableStream): PullEvents & { done(result: PullResult): void } {
  const emit = (event: string, fields: Record<string, unknown>) => stream.write(`${JSON.stringify({ event, ...fields })}\n`);
  const lastProgress = new Map<number, number>();
  return {
    resolved: (info) => emit('resolved', { reference: info.reference, manifestDigest: info.manifestDigest, layers: info.layers }),
    downloadProgress: (layer, bytes, total) => {
      const now = Date.now();
      if (bytes < total && now - (lastProgress.get(layer) ?? 0) < PROGRESS_EVERY_MS) return;
      lastProgress.set(layer, now);
      emit('download', { layer, bytes, total });
    },
    downloadDone: (layer) => emit('downloaded', { layer }),
    applyStart: (layer) => emit('apply', { layer }),
    applyDone: (layer, stats) => emit('applied', { layer, entries: stats.entries, skipped: stats.skipped, bytes: stats.bytes }),
    warn: (message) => emit('warning', { message }),
    done: (result) => emit('done', { rootfs: result.rootfs, manifestDigest: result.image.manifestDigest, layers: result.layers, entries: result.entries, skipped: result.skipped }),
  };
}
