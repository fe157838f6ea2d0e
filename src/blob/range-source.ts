import { appendFileSync } from 'node:fs';
import type { Digest } from '../digest.js';
import type { RegistryClient } from '../registry/client.js';

/**
 * Byte ranges of blobs, from wherever they live. `onProgress`, when given, may be told as the
 * bytes come in (the buffer being filled, and how much of it is), so a caller can use the head
 * of a long range before its end arrives.
 */
export interface RangeSource {
  read(digest: Digest, start: number, end: number, onProgress?: (data: Buffer, filled: number) => void): Promise<Buffer>;
}

/** HTTP Range reads against the registry, counting what each layer cost (for `krgo status`). */
export class RegistryRangeSource implements RangeSource {
  readonly fetched = new Map<Digest, number>();
  requests = 0;

  /** KRGO_TRACE_RANGES=FILE: one line per range read (ms since start, blob, range, ms taken), to study what a workload fetched. */
  private readonly trace = process.env['KRGO_TRACE_RANGES'];

  constructor(private readonly client: RegistryClient) {}

  async read(digest: Digest, start: number, end: number, onProgress?: (data: Buffer, filled: number) => void): Promise<Buffer> {
    this.requests++;
    const began = performance.now();
    const bytes = await this.client.readRange(digest, start, end - start, onProgress);
    this.fetched.set(digest, (this.fetched.get(digest) ?? 0) + bytes.length);
    if (this.trace) appendFileSync(this.trace, `${began.toFixed(0)} ${digest.slice(7, 19)} ${start}-${end} ${end - start} ${(performance.now() - began).toFixed(0)}\n`);
    return bytes;
  }
}
