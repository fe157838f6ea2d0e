import { EventEmitter } from 'node:events';
import { open, rename, rm, stat, mkdir, type FileHandle } from 'node:fs/promises';
import { read as fsRead, open as fsOpenCb, close as fsCloseCb } from 'node:fs';
import { Readable } from 'node:stream';
import { dirname, join } from 'node:path';
import { KrgoError } from '../errors.js';
import { checkDigest, createDigester, digestAlgorithm, digestHex, type Digest } from '../digest.js';
import type { RegistryClient } from '../registry/client.js';
import { resumableChunks, type ResumeOptions } from './resumable-chunks.js';

export type DownloadOptions = ResumeOptions;

/** Where a downloaded blob is kept in the cache directory (pull writes it; push reuses a kept one). */
export function cachedBlobPath(cacheDir: string, digest: Digest): string {
  return join(cacheDir, 'blobs', digestAlgorithm(digest), digestHex(digest));
}

/**
 * Downloads one blob into a file, verified, resuming from the last good byte after a dropped
 * connection (and across runs: the `.partial` file stays). While it runs, `reader()` streams
 * the bytes already on disk, so extraction proceeds as the download does.
 */
export class BlobDownload extends EventEmitter {
  written = 0;
  finished = false;
  failure: Error | undefined;
  readonly partialPath: string;
  /** Set when a complete, rehashed copy was already in the cache. */
  private fromCache = false;
  private readonly started: Promise<void>;
  private markStarted!: () => void;

  constructor(
    private readonly client: RegistryClient,
    readonly digest: Digest,
    readonly size: number,
    readonly path: string,
    private readonly options: DownloadOptions = {},
  ) {
    super();
    this.partialPath = `${path}.partial`;
    this.started = new Promise((resolve) => (this.markStarted = resolve));
  }

  /** Runs the download; resolves when the blob is complete and verified. */
  async run(): Promise<void> {
    try {
      await this.download();
      this.finished = true;
      this.emit('progress');
      this.emit('done');
    } catch (err) {
      this.failure = err as Error;
      this.emit('progress');
      throw err;
    } finally {
      this.markStarted();
    }
  }

  private async download(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    if (await this.cachedCopyIsGood()) {
      this.fromCache = true;
      this.written = this.size;
      this.markStarted();
      return;
    }
    const hash = createDigester(this.digest);
    const fh = await open(this.partialPath, 'a+');
    try {
      this.written = await this.hashExisting(fh, hash);
      this.markStarted();
      this.emit('progress');
      for await (const chunk of resumableChunks(this.client, this.digest, this.size, this.written, this.options)) {
        await fh.write(chunk, 0, chunk.length, this.written);
        hash.update(chunk);
        this.written += chunk.length;
        this.emit('progress');
      }
      // No fsync: a blob found in the cache is verified again as it is read, so a torn file is caught.
    } finally {
      await fh.close();
    }
    if (this.written !== this.size) throw new KrgoError('SIZE_MISMATCH', `blob ${this.digest} has ${this.written} bytes, expected ${this.size}`);
    try {
      checkDigest(this.digest, hash.digest('hex'), 'blob');
    } catch (err) {
      // A corrupt partial must not poison the next run.
      await rename(this.partialPath, `${this.partialPath}.corrupt`).catch(() => undefined);
      throw err;
    }
    await rename(this.partialPath, this.path);
  }

  /**
   * A complete blob left in the cache by an earlier run is trusted only once rehashed; a bad one
   * is dropped (and downloaded again) rather than failing every run after it.
   */
  private async cachedCopyIsGood(): Promise<boolean> {
    const existing = await stat(this.path).catch(() => undefined);
    if (!existing) return false;
    if (existing.size === this.size) {
      const hash = createDigester(this.digest);
      const fh = await open(this.path, 'r');
      try {
        await this.hashExisting(fh, hash);
      } finally {
        await fh.close();
      }
      if (digestHex(this.digest) === hash.digest('hex')) return true;
    }
    this.options.log?.(`cached copy of ${this.digest} is corrupt; downloading it again`);
    await rm(this.path, { force: true });
    return false;
  }

  /** Rehashes a partial file left by an earlier run so the download resumes after it. */
  private async hashExisting(fh: FileHandle, hash: ReturnType<typeof createDigester>): Promise<number> {
    const info = await fh.stat();
    let size = Math.min(info.size, this.size);
    if (info.size > this.size) {
      await fh.truncate(0);
      size = 0;
    }
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return pos;
  }

  /** Streams the blob from disk, following the download as it grows. */
  reader(): Readable {
    let fd: number | undefined;
    let position = 0;
    const download = this;
    const waitForBytes = (): Promise<void> =>
      new Promise((resolve) => {
        if (download.written > position || download.finished || download.failure) resolve();
        else download.once('progress', () => resolve());
      });
    const readable = new Readable({
      highWaterMark: 1 << 20,
      read(size) {
        void (async () => {
          await download.started;
          if (download.failure) throw download.failure;
          if (fd === undefined) fd = await openEither(download.partialPath, download.path, download.fromCache || download.finished);
          while (download.written <= position && !download.finished) {
            if (download.failure) throw download.failure;
            await waitForBytes();
          }
          if (download.failure) throw download.failure;
          const want = Math.min(Math.max(size, 1 << 16), 1 << 20, download.written - position);
          if (want <= 0) {
            this.push(null);
            return;
          }
          const buf = Buffer.allocUnsafe(want);
          const n = await new Promise<number>((resolve, reject) =>
            fsRead(fd!, buf, 0, want, position, (err, bytes) => (err ? reject(err) : resolve(bytes))),
          );
          position += n;
          this.push(n === want ? buf : buf.subarray(0, n));
        })().catch((err) => this.destroy(err as Error));
      },
      destroy(err, cb) {
        if (fd !== undefined) fsCloseCb(fd, () => cb(err));
        else cb(err);
      },
    });
    return readable;
  }
}

function openEither(partial: string, final: string, preferFinal: boolean): Promise<number> {
  const tryOpen = (p: string) => new Promise<number>((resolve, reject) => fsOpenCb(p, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
  return preferFinal ? tryOpen(final) : tryOpen(partial).catch(() => tryOpen(final));
}
