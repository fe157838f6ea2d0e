/**
 * A bounded queue of buffers between a producer and one async-iterating consumer: `push` waits
 * while `highWater` bytes are queued, so a slow consumer holds the producer back instead of
 * letting memory grow. `end()` finishes the stream, `fail()` ends it with an error.
 */
export class ChunkQueue implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  constructor(private readonly highWater = 8 * 1024 * 1024) {}

  async push(chunk: Buffer): Promise<void> {
    // The consumer is gone (failed): nothing more is kept for it.
    if (this.failure) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.wakeConsumer?.();
    while (this.queued > this.highWater && !this.failure) await new Promise<void>((resolve) => (this.wakeProducer = resolve));
  }

  end(): void {
    this.ended = true;
    this.wakeConsumer?.();
  }

  fail(err: Error): void {
    this.failure = err;
    this.wakeConsumer?.();
    this.wakeProducer?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const chunk = this.chunks.shift();
      if (chunk) {
        this.queued -= chunk.length;
        if (this.queued <= this.highWater) this.wakeProducer?.();
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
    }
  }
}
