import type { PullEvents } from '../pull/pull-events.js';
import type { PullResult } from '../pull/pull-image.js';
import type { PushEvents, PushResult } from '../push/push-image.js';
import type { MountStatus } from '../mount/mount-status.js';

/** Download progress lines per layer at most this often (the first and the last always go). */
const PROGRESS_EVERY_MS = 250;

type Emit = (event: string, fields: Record<string, unknown>) => void;

function emitter(stream: NodeJS.WritableStream): Emit {
  return (event, fields) => stream.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/** Whether a progress event for `key` may go now (throttled; a finished one always goes). */
function throttle(): (key: number, finished: boolean) => boolean {
  const last = new Map<number, number>();
  return (key, finished) => {
    const now = Date.now();
    if (!finished && now - (last.get(key) ?? 0) < PROGRESS_EVERY_MS) return false;
    last.set(key, now);
    return true;
  };
}

/**
 * `krgo pull --json`: one JSON object per line on stdout for scripts, each with an `event`:
 * resolved, download (bytes so far), downloaded, apply, applied, warning, done. Errors stay on
 * stderr, as text, with the exit code the README lists.
 */
export function jsonPullEvents(stream: NodeJS.WritableStream): PullEvents & { done(result: PullResult): void } {
  const emit = emitter(stream);
  const due = throttle();
  return {
    resolved: (info) => emit('resolved', { reference: info.reference, manifestDigest: info.manifestDigest, layers: info.layers }),
    downloadProgress: (layer, bytes, total) => {
      if (due(layer, bytes >= total)) emit('download', { layer, bytes, total });
    },
    downloadDone: (layer, info) => emit('downloaded', { layer, cached: info.cached }),
    applyStart: (layer) => emit('apply', { layer }),
    applyDone: (layer, stats) => emit('applied', { layer, entries: stats.entries, skipped: stats.skipped, bytes: stats.bytes }),
    warn: (message) => emit('warning', { message }),
    done: (result) => emit('done', { rootfs: result.rootfs, manifestDigest: result.image.manifestDigest, layers: result.layers, entries: result.entries, skipped: result.skipped }),
  };
}

/**
 * `krgo push --json`: layer (start, with digest and size), upload (bytes sent so far),
 * layer-done (present, mounted, copied or uploaded, and from where), warning, done (the
 * pushed manifest's digest and the layer bytes sent).
 */
export function jsonPushEvents(stream: NodeJS.WritableStream): PushEvents & { done(result: PushResult): void } {
  const emit = emitter(stream);
  const due = throttle();
  return {
    layerStart: (layer, digest, size) => emit('layer', { layer, digest, size }),
    layerProgress: (layer, sent, size) => {
      if (due(layer, sent >= size)) emit('upload', { layer, sent, size });
    },
    layerDone: (layer, outcome, from) => emit('layer-done', { layer, outcome, ...(from ? { from } : {}) }),
    warn: (message) => emit('warning', { message }),
    done: (result) => emit('done', { reference: result.reference, manifestDigest: result.manifestDigest, bytesSent: result.bytesSent, indexes: result.indexes }),
  };
}

/**
 * `krgo mount --json`: indexing (a layer's one pass starts), indexed (per layer: where its index came from), warning, ready (the
 * mountpoint, the manifest digest, the time to ready, the serving process), and, in the
 * foreground, unmounted (bytes fetched, range requests).
 */
export function jsonMountEvents(stream: NodeJS.WritableStream) {
  const emit = emitter(stream);
  return {
    indexing: (layer: number, digest: string, size: number) => emit('indexing', { layer, digest, size }),
    indexed: (layer: number, digest: string, source: string, entries: number) => emit('indexed', { layer, digest, source, entries }),
    warning: (message: string) => emit('warning', { message }),
    ready: (status: MountStatus, log?: string) =>
      emit('ready', { reference: status.reference, manifestDigest: status.manifestDigest, mountpoint: status.mountpoint, ...(status.readyMs !== undefined ? { readyMs: status.readyMs } : {}), pid: status.pid, writable: status.writable !== undefined, ...(log ? { log } : {}) }),
    unmounted: (fetched: number, requests: number) => emit('unmounted', { fetched, requests }),
  };
}
