import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** A local file as a stream of 1 MiB buffers (blobs sent, indexed or verified from disk). */
export async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
}

/** `path` when a file of exactly `size` bytes is there (a local copy of a blob; its digest is checked as it is read). */
export async function fileOfSize(path: string | undefined, size: number): Promise<string | undefined> {
  if (!path) return undefined;
  return (await stat(path).catch(() => undefined))?.size === size ? path : undefined;
}
