/** Pulls exact byte counts out of an async stream of chunks, counting the absolute offset. */
export class ByteReader {
  private current: Buffer = Buffer.alloc(0);
  private pos = 0;
  private done = false;
  offset = 0;
  private readonly iterator: AsyncIterator<Buffer | Uint8Array | string>;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.pos >= this.current.length) {
      if (this.done) return false;
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        return false;
      }
      const v = next.value;
      this.current = Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      this.pos = 0;
    }
    return true;
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    if (!(await this.fill())) return Buffer.alloc(0);
    if (this.current.length - this.pos >= n) {
      const out = this.current.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.offset += n;
      return out;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0 && (await this.fill())) {
      const take = Math.min(need, this.current.length - this.pos);
      parts.push(this.current.subarray(this.pos, this.pos + take));
      this.pos += take;
      this.offset += take;
      need -= take;
    }
    return Buffer.concat(parts);
  }

  /** Yields the next n bytes as they arrive, without copying. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) return;
      const take = Math.min(need, this.current.length - this.pos);
      const slice = this.current.subarray(this.pos, this.pos + take);
      this.pos += take;
      this.offset += take;
      need -= take;
      yield slice;
    }
  }

  async skip(n: number): Promise<number> {
    let skipped = 0;
    for await (const chunk of this.take(n)) skipped += chunk.length;
    return skipped;
  }

  /** Drains the rest (trailing padding after the end-of-archive marker). */
  async drain(): Promise<void> {
    while (await this.fill()) {
      this.offset += this.current.length - this.pos;
      this.pos = this.current.length;
    }
  }
}
