import { createHash } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { KrgoError } from '../errors.js';
import type { Digest } from '../digest.js';
import { encodeHeader, END_OF_ARCHIVE, padding, type WriteEntry } from '../tar/tar-writer.js';
import { fsPath } from '../tar/name-bytes.js';
import { xattrsFromBase64 } from '../tar/tar-entry.js';
import { splitNanoseconds } from '../hostfs/special-files.js';
import { memberName, type LayerChange } from './layer-diff.js';
import { ChunkQueue } from '../util/chunk-queue.js';
import { indexLayerStream, type LayerIndex } from '../index/layer-index.js';

const READ_PIECE = 1024 * 1024;

export interface WrittenLayer {
  /** Of the gzip blob (the layer digest in the manifest). */
  digest: Digest;
  /** Of the uncompressed tar (the diff_id in the config). */
  diffId: Digest;
  size: number;
  uncompressedSize: number;
  entries: number;
}

function headerOf(change: LayerChange): WriteEntry {
  const name = memberName(change);
  if (change.kind !== 'entry') return { path: name, type: 'file', mode: 0o644, mtime: 0 };
  const r = change.record;
  const mtime = splitNanoseconds(r.mtime);
  const entry: WriteEntry = {
    path: name,
    type: r.linkedTo ? 'hardlink' : (r.type as WriteEntry['type']),
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    mtime: mtime.sec,
    mtimeNsec: mtime.nsec,
  };
  if (r.linkedTo) entry.linkname = r.linkedTo.slice(1);
  else if (r.type === 'symlink') entry.linkname = r.link!;
  if (r.rdev) [entry.devmajor, entry.devminor] = r.rdev;
  if (r.xattrs) entry.xattrs = xattrsFromBase64(r.xattrs);
  return entry;
}

/** A file's bytes as recorded: exactly `size` of them, or an error if it changed meanwhile. */
async function* fileBytes(host: string, path: string, size: number): AsyncGenerator<Buffer> {
  // By its bytes: a name that is not UTF-8 is still this very file (tar/name-bytes.ts).
  const handle = await open(fsPath(host), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let read = 0;
    while (read < size) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_PIECE, size - read));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, read);
      if (bytesRead === 0) break;
      read += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
    const { size: now } = await handle.stat();
    if (read !== size || now !== size) throw new KrgoError('GIT_STATE', `${path} changed while the layer was written (${size} bytes recorded, ${now} now); run the commit again`);
  } finally {
    await handle.close();
  }
}

/** The layer's tar stream: headers from the records, file bytes read from the rootfs. */
async function* tarStream(root: string, changes: readonly LayerChange[]): AsyncGenerator<Buffer> {
  for (const change of changes) {
    const entry = headerOf(change);
    const size = change.kind === 'entry' && entry.type === 'file' ? change.record.size! : 0;
    yield encodeHeader(entry, size);
    if (size > 0) {
      yield* fileBytes(root + change.path, change.path, size);
      yield padding(size);
    }
  }
  yield END_OF_ARCHIVE;
}

function hashing(hash: ReturnType<typeof createHash>, count: { bytes: number }, tee?: ChunkQueue): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      count.bytes += chunk.length;
      if (tee) tee.push(chunk).then(() => done(null, chunk), done);
      else done(null, chunk);
    },
  });
}

/**
 * Writes the changes as a gzip-compressed layer into `blobDir/<hex>` (atomically) and returns its
 * digests; with `indexed`, also the layer's index, built from the compressed bytes as they are
 * made (no second pass over the blob).
 */
export async function writeLayer(root: string, changes: readonly LayerChange[], blobDir: string, options: { indexed?: boolean } = {}): Promise<WrittenLayer & { path: string; index?: LayerIndex }> {
  const tarHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const tarCount = { bytes: 0 };
  const blobCount = { bytes: 0 };
  await mkdir(blobDir, { recursive: true });
  const partial = join(blobDir, `layer-${process.pid}.partial`);
  const tee = options.indexed ? new ChunkQueue() : undefined;
  const indexing = tee ? indexLayerStream(tee) : undefined;
  // A failed indexer stops taking bytes (the writer never waits on it) and fails the write below.
  indexing?.catch((err: unknown) => tee?.fail(err as Error));
  let path: string;
  let finishIndex: Awaited<typeof indexing>;
  try {
    await pipeline(tarStream(root, changes), hashing(tarHash, tarCount), createGzip({ level: 6 }), hashing(blobHash, blobCount, tee), createWriteStream(partial));
    tee?.end();
    finishIndex = await indexing;
    path = join(blobDir, blobHash.copy().digest('hex'));
    await rename(partial, path);
  } catch (err) {
    tee?.fail(err as Error);
    await rm(partial, { force: true });
    throw err;
  }
  const digest = `sha256:${blobHash.digest('hex')}` as Digest;
  return {
    path,
    digest,
    diffId: `sha256:${tarHash.digest('hex')}` as Digest,
    size: blobCount.bytes,
    uncompressedSize: tarCount.bytes,
    entries: changes.length,
    ...(finishIndex ? { index: finishIndex(digest, blobCount.bytes) } : {}),
  };
}
