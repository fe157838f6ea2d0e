import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, type Digest } from '../digest.js';
import { writeFileAtomically } from '../util/atomic-write.js';

const HASH_BYTES = 32;
/**
 * Spans wait for a pause this long in the puts (and the reads, below) before they are written:
 * puts come as reads are served, and sealing and writing them (~65 ms of the main thread for the
 * bench's python imports) would compete with the reads the mount is serving.
 */
const QUIET_MS = 200;
/**
 * Reads the mount serves count as activity too (`busy`): a program the mount just started reads
 * in bursts between stretches of work, and each burst that waits on the main thread while it
 * seals and writes costs the program time. At most this long, though: a mount that is never
 * quiet still writes what it fetched.
 */
const MAX_DEFER_MS = 5000;
/** Bytes waiting for that pause at most: past this, the oldest are written at once. */
const MAX_WAITING_BYTES = 32 * 1024 * 1024;

interface WaitingSpan {
  digest: Digest;
  span: number;
  binding: string;
  data: Buffer;
  /** Resolves (or rejects) the put's promise. */
  settle: (err?: unknown) => void;
}

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
 * and fetched again); writes are atomic (temp file, rename) and wait for a pause in the puts;
 * the total is kept under `maxBytes` by dropping the least recently used spans.
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
  /** Spans put and not yet written, by path, in the order they came; `get` serves them too. */
  private readonly waiting = new Map<string, WaitingSpan>();
  private waitingBytes = 0;
  private quietTimer: NodeJS.Timeout | undefined;
  /** When the oldest waiting span was put (performance.now()). */
  private waitingSince = 0;

  /** The spans' folder, normalized once: a span's path is then joined by hand (a replay asks for thousands). */
  private readonly base: string;

  constructor(
    readonly dir: string,
    readonly maxBytes = 2 * 1024 ** 3,
    private readonly quietMs = QUIET_MS,
    private readonly maxDeferMs = MAX_DEFER_MS,
  ) {
    this.base = join(dir);
  }

  private pathFor(digest: Digest, span: number): string {
    return `${this.base}/${digestHex(digest)}/${span}`;
  }

  /** The span's data, if a file sealed for exactly this layer, span and binding is here. */
  async get(digest: Digest, span: number, binding: string): Promise<Buffer | undefined> {
    const waiting = this.waiting.get(this.pathFor(digest, span));
    if (waiting) return waiting.binding === binding ? waiting.data : undefined;
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

  /**
   * Stores a span: written once the puts pause (QUIET_MS), or at once when too many bytes wait.
   * Resolves when it is on disk.
   */
  put(digest: Digest, span: number, binding: string, data: Buffer): Promise<void> {
    const path = this.pathFor(digest, span);
    const before = this.waiting.get(path);
    if (before) {
      this.waiting.delete(path);
      this.waitingBytes -= before.data.length;
      before.settle();
    }
    let settle!: (err?: unknown) => void;
    const written = new Promise<void>((resolve, reject) => (settle = (err) => (err === undefined ? resolve() : reject(err))));
    if (this.waiting.size === 0) this.waitingSince = performance.now();
    this.waiting.set(path, { digest, span, binding, data, settle });
    this.waitingBytes += data.length;
    if (this.waitingBytes > MAX_WAITING_BYTES) this.writeWaiting(this.waitingBytes - MAX_WAITING_BYTES / 2);
    this.busy();
    return written;
  }

  /** The caller is serving reads: what waits is written after a pause in them too (maxDeferMs at most). */
  busy(): void {
    if (this.waiting.size === 0) return;
    // One timer, pushed back by each put or read (a replay puts thousands of cells).
    if (!this.quietTimer) this.quietTimer = setTimeout(() => this.writeWaiting(Infinity), this.quietMs);
    else if (performance.now() - this.waitingSince < this.maxDeferMs) this.quietTimer.refresh();
  }

  /** Resolves once every put so far is on disk (before a process that read spans ends). */
  flush(): Promise<void> {
    this.writeWaiting(Infinity);
    return this.queue;
  }

  /** Queues the oldest waiting spans for writing, at least `bytes` of them. */
  private writeWaiting(bytes: number): void {
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    let taken = 0;
    for (const [path, waiting] of this.waiting) {
      if (taken >= bytes) break;
      this.waiting.delete(path);
      this.waitingBytes -= waiting.data.length;
      taken += waiting.data.length;
      const done = this.queue.then(() => this.write(waiting.digest, waiting.span, waiting.binding, waiting.data));
      done.then(() => waiting.settle(), (err: unknown) => waiting.settle(err ?? new Error('span write failed')));
      this.queue = done.catch(() => undefined);
    }
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
