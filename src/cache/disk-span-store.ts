import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, type Digest } from '../digest.js';
import { writeFileAtomically } from '../util/atomic-write.js';

const HASH_BYTES = 32;

/**
 * The SHA-256 a span file starts with: over what the file is (layer, span number, and the
 * caller's binding: which bytes of the layer it holds) and its data. A file copied, moved or
 * left by another index in this place fails the check like a corrupt one.
 */
function sealOf(digest: Digest, span: number, binding: string, data: Buffer): Buffer {
  return createHash('sha256').update(`krgo-span\0${digest}\0${span}\0${binding}\0`).update(data).digest();
}

/**
 * Decompressed layer spans on disk, shared by every mount using the cache directory. Each file
 * starts with a seal (SHA-256 of its place and its data) checked when read (a bad one is deleted
 * and fetched again); writes are atomic (temp file, rename); the total is kept under `maxBytes`
 * by dropping the least recently used spans.
 */
export class DiskSpanStore {
  /** Bytes on disk: measured once, then counted as spans come and go. */
  private total: number | undefined;
  /** Puts run one after another: the count and the bound hold even under a flood of writes. */
  private queue: Promise<void> = Promise.resolve();
  /**
   * Per layer (or windows blob): whether its directory was there when first asked. A cold cache
   * then answers every lookup of the blob without a file system call each (a replay looks up
   * hundreds of spans at once, each open a turn of the event loop away). Cleared by this
   * process's first write there; spans another process writes meanwhile are only fetched again.
   */
  private readonly present = new Map<string, Promise<boolean>>();

  constructor(
    readonly dir: string,
    readonly maxBytes = 2 * 1024 ** 3,
  ) {}

  private pathFor(digest: Digest, span: number): string {
    return join(this.dir, digestHex(digest), String(span));
  }

  /** The span's data, if a file sealed for exactly this layer, span and binding is here. */
  async get(digest: Digest, span: number, binding: string): Promise<Buffer | undefined> {
    const hex = digestHex(digest);
    let present = this.present.get(hex);
    if (!present) this.present.set(hex, (present = stat(join(this.dir, hex)).then(() => true, () => false)));
    if (!(await present)) return undefined;
    const path = this.pathFor(digest, span);
    let file: Buffer;
    try {
      file = await readFile(path);
    } catch {
      return undefined;
    }
    const data = file.subarray(HASH_BYTES);
    if (file.length < HASH_BYTES || !sealOf(digest, span, binding, data).equals(file.subarray(0, HASH_BYTES))) {
      await rm(path, { force: true });
      return undefined;
    }
    const t = new Date();
    await utimes(path, t, t).catch(() => undefined);
    return data;
  }

  put(digest: Digest, span: number, binding: string, data: Buffer): Promise<void> {
    const done = this.queue.then(() => this.write(digest, span, binding, data));
    this.queue = done.catch(() => undefined);
    return done;
  }

  /** Resolves once every put so far is on disk (before a process that read spans ends). */
  flush(): Promise<void> {
    return this.queue;
  }

  private async write(digest: Digest, span: number, binding: string, data: Buffer): Promise<void> {
    this.total ??= await this.measure();
    // Seal and span as two writes: joined, each span was copied once more on the main thread.
    await writeFileAtomically(this.pathFor(digest, span), [sealOf(digest, span, binding, data), data]);
    this.present.set(digestHex(digest), Promise.resolve(true));
    this.total += data.length + HASH_BYTES;
    if (this.total > this.maxBytes) await this.evict();
  }

  private async files(): Promise<{ path: string; size: number; mtime: number }[]> {
    const out: { path: string; size: number; mtime: number }[] = [];
    for (const layer of await readdir(this.dir).catch(() => [] as string[])) {
      for (const name of await readdir(join(this.dir, layer)).catch(() => [] as string[])) {
        const path = join(this.dir, layer, name);
        const info = await stat(path).catch(() => undefined);
        if (info?.isFile()) out.push({ path, size: info.size, mtime: info.mtimeMs });
      }
    }
    return out;
  }

  private async measure(): Promise<number> {
    return (await this.files()).reduce((a, f) => a + f.size, 0);
  }

  /** Drops the least recently used spans down to 80% of the bound, then counts afresh from what is there. */
  private evict(): Promise<void> {
    return this.trimTo(this.maxBytes * 0.8);
  }

  /** Drops the least recently used spans until at most `bytes` remain (krgo cache prune). */
  async trimTo(bytes: number): Promise<void> {
    const files = (await this.files()).sort((a, b) => a.mtime - b.mtime);
    let total = files.reduce((a, f) => a + f.size, 0);
    for (const f of files) {
      if (total <= bytes) break;
      await rm(f.path, { force: true });
      total -= f.size;
    }
    this.total = total;
  }
}
