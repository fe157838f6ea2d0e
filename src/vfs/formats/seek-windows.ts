import { unpackWindow, windowFromBlob, windowRange, type WindowTable } from '../../index/window-table.js';
import type { SpanContext } from './span-format.js';

/**
 * Window `w` of a table (a layer index's, or an access profile's): from the blob when at hand
 * (built here), else fetched by range from the blob in the registry and kept in the span caches
 * like a span; checked against the table either way.
 */
export function seekWindow(ctx: SpanContext, table: WindowTable, w: number, background = false): Promise<Buffer> {
  if (table.blob) return Promise.resolve(windowFromBlob(table, table.blob, w));
  // The whole blob on its way (an access profile's): taken from it, by range only if it fails.
  if (table.coming) {
    const { coming, ...rest } = table;
    return coming.then((blob) => (blob ? windowFromBlob(table, blob, w) : seekWindow(ctx, rest, w, background)));
  }
  const key = `${table.digest}:w${w}`;
  const known = ctx.cache.lookup(key);
  if (known) return known;
  const fetch = (async () => {
    const kept = await ctx.cache.disk?.get(table.digest, w, 'window');
    if (kept) {
      try {
        return unpackWindow(table, w, kept);
      } catch {
        // Not the window the index names: fetched again below.
      }
    }
    const [start, end] = windowRange(table, w);
    const packed = await ctx.source.read(table.digest, start, end, { background });
    const window = unpackWindow(table, w, packed);
    await ctx.cache.disk?.put(table.digest, w, 'window', packed).catch((err: unknown) => ctx.onBackgroundError(err));
    return window;
  })();
  return ctx.cache.share(key, fetch);
}
