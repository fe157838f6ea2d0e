import { EventEmitter } from 'node:events';
import { open, rename, rm, stat, mkdir, type FileHandle } from 'node:fs/promises';
import { read as fsRead, open as fsOpenCb, close as fsCloseCb } from 'node:fs';
import { Readable } from 'node:stream';
import { dirname, join } from 'node:path';
import { KrgoError } from '../errors.js';
import { checkDigest, createDigester, digestAlgorithm, digestHex, type Digest } from '../digest.js';
import type { RegistryClient } from '../registry/client.js';
import { resumableChunks, type ResumeOptions } from './resumable-chunks.js';
import { OwnerLock } from '../util/owner-lock.js';

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

  /** Whether the blob was complete in the cache already (nothing downloaded: docker's "Already exists"). */
  get wasCached(): boolean {
    return this.fromCache;
  }
  /**
   * The blob's file, held open from the start of the download until releaseHeldFile: every reader
   * reads through it, so a rename, or a delete by another krgo process done with the blob,
   * changes nothing here.
   */
  private heldFile: FileHandle | undefined;
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
      this.heldFile = await open(this.path, 'r');
      this.written = this.size;
      this.markStarted();
      return;
    }
    // Bytes [0, written) of the partial file have gone into this hash, whoever wrote them.
    const hash = createDigester(this.digest);
    for (;;) {
      const lock = await OwnerLock.tryAcquire(`${this.path}.lock`);
      if (lock) {
        try {
          await this.downloadAsOwner(hash);
        } finally {
          await lock.release();
        }
        return;
      }
      // Another krgo process is downloading this blob into the same cache: follow its partial
      // file instead of writing a second copy into it.
      if (await this.followOtherWriter(hash)) return;
      // Its writer went away without finishing: take over from where the partial file stands.
    }
  }

  /** This process writes the partial file: resumes after what is there, verifies, renames into place. */
  private async downloadAsOwner(hash: ReturnType<typeof createDigester>): Promise<void> {
    const fh = await open(this.partialPath, 'a+');
    await this.releaseHeldFile();
    this.heldFile = fh;
    try {
      const onDisk = (await fh.stat()).size;
      if (onDisk < this.written) throw new KrgoError('NETWORK', `the partial download of ${this.digest} was removed while it was read; run the command again`);
      if (onDisk > this.size) {
        if (this.written > 0) throw new KrgoError('SIZE_MISMATCH', `blob ${this.digest} is larger than its declared ${this.size} bytes`);
        await fh.truncate(0);
      }
      this.written = await this.hashRange(fh, hash, this.written, Math.min(onDisk, this.size));
      this.markStarted();
      this.emit('progress');
      for await (const chunk of resumableChunks(this.client, this.digest, this.size, this.written, this.options)) {
        await fh.write(chunk, 0, chunk.length, this.written);
        hash.update(chunk);
        this.written += chunk.length;
        this.emit('progress');
      }
      // No fsync: a blob found in the cache is verified again as it is read, so a torn file is caught.
    } catch (err) {
      await this.releaseHeldFile();
      throw err;
    }
    this.checkComplete(hash);
    await rename(this.partialPath, this.path);
  }

  /**
   * Follows a partial file another process writes, hashing its bytes as they come, until that
   * process lets go. True when the blob is complete (and our hash of the same bytes agrees).
   * The file stays open: the other process may rename it, or delete it once its pull is done,
   * and this one still reads the same bytes.
   */
  private async followOtherWriter(hash: ReturnType<typeof createDigester>): Promise<boolean> {
    this.options.log?.(`another krgo process is downloading ${this.digest.slice(0, 19)}; sharing its download`);
    const lockPath = `${this.path}.lock`;
    for (;;) {
      const held = await OwnerLock.heldByLiveOwner(lockPath);
      this.heldFile ??= await open(this.partialPath, 'r').catch(() => open(this.path, 'r')).catch(() => undefined);
      if (this.heldFile) {
        const size = Math.min((await this.heldFile.stat()).size, this.size);
        if (size > this.written) {
          this.written = await this.hashRange(this.heldFile, hash, this.written, size);
          this.markStarted();
          this.emit('progress');
        }
      }
      if (held) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (this.written === this.size) {
        this.checkComplete(hash);
        return true;
      }
      // Its writer went away: what it wrote stays ours to resume from.
      await this.releaseHeldFile();
      return false;
    }
  }

  /** Closes the blob's file (call when done reading the blob). */
  async releaseHeldFile(): Promise<void> {
    const file = this.heldFile;
    this.heldFile = undefined;
    await file?.close();
  }

  private checkComplete(hash: ReturnType<typeof createDigester>): void {
    if (this.written !== this.size) throw new KrgoError('SIZE_MISMATCH', `blob ${this.digest} has ${this.written} bytes, expected ${this.size}`);
    try {
      checkDigest(this.digest, hash.digest('hex'), 'blob');
    } catch (err) {
      // A corrupt partial must not poison the next run, nor stay as garbage.
      void rm(this.partialPath, { force: true });
      throw err;
    }
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
        await this.hashRange(fh, hash, 0, this.size);
      } finally {
        await fh.close();
      }
      if (digestHex(this.digest) === hash.digest('hex')) return true;
    }
    this.options.log?.(`cached copy of ${this.digest} is corrupt; downloading it again`);
    await rm(this.path, { force: true });
    return false;
  }

  /** Feeds bytes [from, to) of a file into the hash; returns where it stopped (short if the file is). */
  private async hashRange(fh: FileHandle, hash: ReturnType<typeof createDigester>, from: number, to: number): Promise<number> {
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = from;
    while (pos < to) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - pos), pos);
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
          if (fd === undefined) {
            // Read through the held descriptor: the file's name may be gone by now.
            const held = download.heldFile;
            fd = await openEither(held ? `/proc/self/fd/${held.fd}` : download.partialPath, download.path, !held && (download.fromCache || download.finished));
          }
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
