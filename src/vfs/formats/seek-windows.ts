import { unpackWindow, windowFromBlob, windowRange, type WindowTable } from '../../index/window-table.js';
import type { SpanContext } from './span-format.js';

/**
 * Window `w` of a table (a layer index's, or an access profile's): from the blob when at hand
 * (built here), else fetched by range from the blob in the registry and kept in the span caches
 * like a span; checked against the table either way. `requested` is called once the window needs
 * no request of its own or its request has gone out: a caller fetching the cells after it sends
 * their range only then, so the window's few KiB are not answered behind the cells' megabytes.
 */
export function seekWindow(ctx: SpanContext, table: WindowTable, w: number, background = false, requested: () => void = () => undefined): Promise<Buffer> {
  if (table.blob) {
    requested();
    return Promise.resolve(windowFromBlob(table, table.blob, w));
  }
  // The whole blob on its way (an access profile's): taken from it, by range only if it fails.
  if (table.coming) {
    requested();
    const { coming, ...rest } = table;
    return coming.then((blob) => (blob ? windowFromBlob(table, blob, w) : seekWindow(ctx, rest, w, background)));
  }
  const key = `${table.digest}:w${w}`;
  const known = ctx.cache.lookup(key);
  if (known) {
    requested();
    return known;
  }
  const fetch = (async () => {
    try {
      const kept = await ctx.cache.disk?.get(table.digest, w, 'window');
      if (kept) {
        try {
          return unpackWindow(table, w, kept);
        } catch {
          // Not the window the index names: fetched again below.
        }
      }
      const [start, end] = windowRange(table, w);
      const reading = ctx.source.read(table.digest, start, end, { background });
      requested();
      const packed = await reading;
      const window = unpackWindow(table, w, packed);
      // Kept for other mounts in the background: the read waiting on the window does not wait for the disk.
      void ctx.cache.disk?.put(table.digest, w, 'window', packed).catch((err: unknown) => ctx.onBackgroundError(err));
      return window;
    } finally {
      requested();
    }
  })();
  return ctx.cache.share(key, fetch);
}
