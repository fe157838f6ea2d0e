import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, type Digest } from '../digest.js';
import { writeFileAtomically } from '../util/atomic-write.js';

const HASH_BYTES = 32;

/**
 * Decompressed layer spans on disk, shared by every mount using the cache directory. Each file
 * starts with the SHA-256 of its data and is checked when read (a bad one is deleted and
 * fetched again); writes are atomic (temp file, rename); the total is kept under `maxBytes` by
 * dropping the least recently used spans.
 */
export class DiskSpanStore {
  private total: number | undefined;
  private evicting: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly maxBytes = 2 * 1024 ** 3,
  ) {}

  private pathFor(digest: Digest, span: number): string {
    return join(this.dir, digestHex(digest), String(span));
  }

  async get(digest: Digest, span: number): Promise<Buffer | undefined> {
    const path = this.pathFor(digest, span);
    let file: Buffer;
    try {
      file = await readFile(path);
    } catch {
      return undefined;
    }
    const data = file.subarray(HASH_BYTES);
    if (file.length < HASH_BYTES || !createHash('sha256').update(data).digest().equals(file.subarray(0, HASH_BYTES))) {
      await rm(path, { force: true });
      return undefined;
    }
    const t = new Date();
    await utimes(path, t, t).catch(() => undefined);
    return data;
  }

  async put(digest: Digest, span: number, data: Buffer): Promise<void> {
    await writeFileAtomically(this.pathFor(digest, span), Buffer.concat([createHash('sha256').update(data).digest(), data]));
    this.total = (this.total ?? (await this.measure())) + data.length + HASH_BYTES;
    if (this.total > this.maxBytes) await (this.evicting ??= this.evict().finally(() => (this.evicting = undefined)));
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

  /** Drops the least recently used spans down to 90% of the bound. */
  private async evict(): Promise<void> {
    const files = (await this.files()).sort((a, b) => a.mtime - b.mtime);
    let total = files.reduce((a, f) => a + f.size, 0);
    for (const f of files) {
      if (total <= this.maxBytes * 0.9) break;
      await rm(f.path, { force: true });
      total -= f.size;
    }
    this.total = total;
  }
}
