import { LRUCache } from 'lru-cache';
import type { DiskSpanStore } from './disk-span-store.js';

/**
 * Decompressed pieces of layers (spans, seek windows, eStargz chunks), shared by all readers of
 * a mount: in memory (bounded in bytes, least recently used dropped), each fetch shared by
 * everyone who asks while it runs, and on disk behind that (`disk`, shared by every mount of
 * the cache directory).
 */
export class SpanCache {
  private readonly lru: LRUCache<string, Buffer>;
  private readonly inflight = new Map<string, Promise<Buffer>>();

  constructor(
    maxBytes = 256 * 1024 * 1024,
    readonly disk?: DiskSpanStore,
  ) {
    this.lru = new LRUCache<string, Buffer>({ maxSize: maxBytes, sizeCalculation: (b) => Math.max(1, b.length) });
  }

  /** What is in memory or already being fetched under `key`. */
  lookup(key: string): Promise<Buffer> | undefined {
    const cached = this.lru.get(key);
    return cached ? Promise.resolve(cached) : this.inflight.get(key);
  }

  /** Whether `key` is in memory or being fetched (no recency update). */
  has(key: string): boolean {
    return this.lru.has(key) || this.inflight.has(key);
  }

  /** Keeps bytes that arrived without anyone waiting for them (a fetch's lead-in). */
  add(key: string, data: Buffer): void {
    if (!this.lru.has(key)) this.lru.set(key, data);
  }

  /** Registers a fetch so concurrent readers share it; its result is cached, a failure is not. */
  share(key: string, fetch: Promise<Buffer>): Promise<Buffer> {
    this.inflight.set(key, fetch);
    fetch.then(
      (b) => this.lru.set(key, b),
      () => undefined,
    ).finally(() => this.inflight.delete(key));
    return fetch;
  }
}
