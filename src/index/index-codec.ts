import { createHash } from 'node:crypto';
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants } from 'node:zlib';
import { KrgoError } from '../errors.js';
import { parseDigest, type Digest } from '../digest.js';
import { xattrsFromBase64, type TarEntry } from '../tar/tar-entry.js';
import { WINDOW_HASH_BYTES, type WindowRef } from './window-table.js';
import { INDEX_FORMAT_VERSION, READABLE_INDEX_VERSIONS, type IndexPoint, type LayerIndex, type LayerFormat } from './index-format.js';
import { chunksFrom, ENTRY_TYPES, entriesOf, entryColumns, hintsFrom, NO_XATTRS, pointColumns, pointsOf, type ChunkTuple, type EntryColumns, type PointColumns } from './entry-columns.js';

/*
 * On-disk layout, version 6:
 *   "KRGOIDX\0" | u32 version | u32 header length | header JSON | brotli(body) | sha256 of all before
 * body: u32 JSON length | JSON {entries, points} in columns (entry-columns.ts) | per window:
 * u32 length, the first 16 bytes of the window's sha256. The windows themselves are a blob of
 * their own (window-table.ts), named by the header's windowsDigest, packed one after the other
 * (so each one's offset is the sum of the lengths before it).
 * Still read: version 5, the same but access times as tuples and per window f64 offset, u32
 * length and the whole sha256 (a mount fetches every layer's index before it is ready: 6 is 19%
 * smaller for the bench image); version 4, whose body was u32 entries length | entries JSON (one tuple per entry) |
 * per seek point: f64 in, u8 bits, f64 out, i32 window number (-1: none) | the windows as in 5;
 * and version 3, with one window per point, its ref inline: per point f64 in, u8 bits, f64 out,
 * f64 window offset, u32 window length, sha256.
 */
const MAGIC = Buffer.from('KRGOIDX\0', 'latin1');
/** Dependency hints kept per file (file-hints.ts); a real file has a few dozen at most. */
export const MAX_DEPS = 256;

interface Header {
  layerDigest: string;
  compressedSize: number;
  uncompressedSize: number;
  format: LayerFormat;
  /** Version 4; version 3 had `span` (the grid, every point keyed). */
  grid?: number;
  windowSpacing?: number;
  span?: number;
  entries: number;
  checkpoints: number;
  /** Version 4: how many points are keyed (version 3: all). */
  windows?: number;
  windowsDigest: string;
  windowsSize: number;
  tocOffset?: number;
}
const V3_POINT_BYTES = 8 + 1 + 8 + 8 + 4 + 32;
const POINT_BYTES = 8 + 1 + 8 + 4;
/** Versions 4 and 5. */
const V5_WINDOW_REF_BYTES = 8 + 4 + 32;
const WINDOW_REF_BYTES = 4 + WINDOW_HASH_BYTES;

/** An entry as versions 3 and 4 wrote it. */
type EntryTuple = [string, number, number, number, number, number, number, number, string, number, number, number, number, Record<string, string> | 0, (number | null)?, (number | null)?, (ChunkTuple[] | null)?, string[]?];

interface BodyJson {
  entries: EntryColumns;
  points: PointColumns;
}

function fromTuple(t: EntryTuple): TarEntry {
  const type = ENTRY_TYPES[t[1]];
  if (!type) throw new KrgoError('INDEX_INVALID', `index entry ${JSON.stringify(t[0])} has an unknown type`);
  const entry: TarEntry = {
    path: t[0], type, mode: t[2], uid: t[3], gid: t[4], size: t[5], mtime: t[6], mtimeNsec: t[7], linkname: t[8], devmajor: t[9], devminor: t[10],
    dataOffset: t[11], headerOffset: t[12],
    xattrs: t[13] ? xattrsFromBase64(t[13]) : NO_XATTRS,
  };
  // Optional fields are set only when present (no temporary objects per entry: decoding is on a mount's critical path).
  if (t[14] !== undefined && t[14] !== null) {
    entry.atime = t[14];
    entry.atimeNsec = t[15] ?? 0;
  }
  if (t[16]) entry.chunks = chunksFrom(t[16]);
  const hints = hintsFrom(t[17], MAX_DEPS);
  if (hints) entry.deps = hints;
  return entry;
}

export function encodeIndex(index: LayerIndex): Buffer {
  const header: Header = {
    layerDigest: index.layerDigest, compressedSize: index.compressedSize, uncompressedSize: index.uncompressedSize,
    format: index.format, grid: index.grid, windowSpacing: index.windowSpacing, entries: index.entries.length, checkpoints: index.checkpoints.length,
    windows: index.windows.refs.length, windowsDigest: index.windows.digest, windowsSize: index.windows.size,
    ...(index.tocOffset !== undefined ? { tocOffset: index.tocOffset } : {}),
  };
  const headerBytes = Buffer.from(JSON.stringify(header));
  index.checkpoints.forEach((cp, i) => {
    if (cp.window >= index.windows.refs.length) throw new KrgoError('INDEX_INVALID', `seek point ${i} names window ${cp.window}, the index has ${index.windows.refs.length}`);
  });
  const json = Buffer.from(JSON.stringify({ entries: entryColumns(index.entries), points: pointColumns(index.checkpoints) } satisfies BodyJson));
  const refs = Buffer.alloc(WINDOW_REF_BYTES * index.windows.refs.length);
  let packedUpTo = 0;
  index.windows.refs.forEach((ref, i) => {
    // Decoding checks this of every index, whatever its version: a table here is always packed in order.
    if (ref.offset !== packedUpTo) throw new KrgoError('INDEX_INVALID', `seek window ${i} does not follow the one before it in its blob`);
    packedUpTo += ref.length;
    const at = i * WINDOW_REF_BYTES;
    refs.writeUInt32LE(ref.length, at);
    ref.sha256.copy(refs, at + 4, 0, WINDOW_HASH_BYTES);
  });
  const prefix = Buffer.concat([MAGIC, u32(INDEX_FORMAT_VERSION), u32(headerBytes.length), headerBytes, compressBody(Buffer.concat([u32(json.length), json, refs]))]);
  return Buffer.concat([prefix, createHash('sha256').update(prefix).digest()]);
}

/**
 * The body is mostly JSON of paths and numbers: brotli (quality 5, 16 MiB window) packs it
 * smaller than gzip -6 in about the same time (native-notes/gzip-random-access.md).
 */
function compressBody(body: Buffer): Buffer {
  return brotliCompressSync(body, {
    params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5, [zlibConstants.BROTLI_PARAM_LGWIN]: 24, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

const BODY_CHUNK_MIN = 64 * 1024;
const BODY_CHUNK_MAX = 64 * 1024 * 1024;

const invalidIndex = (why: string): never => {
  throw new KrgoError('INDEX_INVALID', `layer index is not usable: ${why}`);
};

/** The checked envelope of an index file: its version and header, the body left compressed. */
function openEnvelope(file: Buffer): { version: number; header: Header; headerLength: number; prefix: Buffer } {
  if (file.length < MAGIC.length + 8 + 32 || !file.subarray(0, MAGIC.length).equals(MAGIC)) invalidIndex('not a krgo index');
  const version = file.readUInt32LE(8);
  if (!READABLE_INDEX_VERSIONS.includes(version)) invalidIndex(`format version ${version}, this krgo reads ${READABLE_INDEX_VERSIONS.join(', ')}`);
  const prefix = file.subarray(0, file.length - 32);
  if (!createHash('sha256').update(prefix).digest().equals(file.subarray(file.length - 32))) invalidIndex('checksum mismatch (corrupt or truncated)');
  try {
    const headerLength = file.readUInt32LE(12);
    return { version, header: JSON.parse(file.toString('utf8', 16, 16 + headerLength)) as Header, headerLength, prefix };
  } catch (err) {
    return invalidIndex(`malformed (${(err as Error).message})`);
  }
}

/**
 * What an index file says about itself without its body (no decompression): the layer it
 * describes and its windows blob. For passing a stored index on as it is (a push).
 */
export function peekIndex(file: Buffer): { layerDigest: Digest; compressedSize: number; windows: { digest: Digest; size: number } } {
  const { header } = openEnvelope(file);
  try {
    return { layerDigest: parseDigest(header.layerDigest), compressedSize: header.compressedSize, windows: { digest: parseDigest(header.windowsDigest), size: header.windowsSize } };
  } catch (err) {
    if (err instanceof KrgoError && err.code === 'INDEX_INVALID') throw err;
    return invalidIndex(`malformed (${(err as Error).message})`);
  }
}

/** Whether a (checked) index file is of the format this krgo writes. */
export function isCurrentFormat(file: Buffer): boolean {
  return file.length >= 12 && file.readUInt32LE(8) === INDEX_FORMAT_VERSION;
}

/** Decodes and checks an index file; anything off is INDEX_INVALID, never trusted. */
export function decodeIndex(file: Buffer): LayerIndex {
  const { version, header, headerLength, prefix } = openEnvelope(file);
  try {
    const compressed = prefix.subarray(16 + headerLength);
    // Output in one piece where the body packs ~6:1 (as Debian layers' do) instead of 16 KiB ones
    // joined after: 13 ms instead of 17–22 for the bench image's three indexes, on a mount's way to ready.
    const body = brotliDecompressSync(compressed, { chunkSize: Math.min(BODY_CHUNK_MAX, Math.max(BODY_CHUNK_MIN, compressed.length * 8)) });
    const jsonLength = body.readUInt32LE(0);
    const json: unknown = JSON.parse(body.toString('utf8', 4, 4 + jsonLength));
    const { entries, checkpoints, refs } = version >= 5 ? decodeBody(version, json as BodyJson, body, 4 + jsonLength, header) : decodeTupleBody(version, json as EntryTuple[], body, 4 + jsonLength, header);
    let packedUpTo = 0;
    for (const [i, ref] of refs.entries()) {
      if (!Number.isSafeInteger(ref.offset) || ref.offset < 0 || ref.offset + ref.length > header.windowsSize) invalidIndex(`window ${i} lies outside its blob`);
      // As krgo packs them (window-table.ts): what lets format 6 leave the offsets out.
      if (ref.offset !== packedUpTo) invalidIndex(`window ${i} does not follow the one before it in its blob`);
      packedUpTo += ref.length;
    }
    const grid = header.grid ?? header.span ?? 0;
    return {
      version: INDEX_FORMAT_VERSION, layerDigest: parseDigest(header.layerDigest), compressedSize: header.compressedSize,
      uncompressedSize: header.uncompressedSize, format: header.format, grid, windowSpacing: header.windowSpacing ?? grid, entries, checkpoints,
      windows: { digest: parseDigest(header.windowsDigest), size: header.windowsSize, refs },
      ...(header.tocOffset !== undefined ? { tocOffset: header.tocOffset } : {}),
    };
  } catch (err) {
    if (err instanceof KrgoError) throw err;
    return invalidIndex(`malformed (${(err as Error).message})`);
  }
}

type Invalid = (why: string) => never;
type Body = { entries: TarEntry[]; checkpoints: IndexPoint[]; refs: WindowRef[] };

/** Versions 6 and 5: entries and points in columns. */
function decodeBody(version: number, json: BodyJson, body: Buffer, refsAt: number, header: Header): Body {
  const windows = header.windows ?? 0;
  if (body.length !== refsAt + (version === 5 ? V5_WINDOW_REF_BYTES : WINDOW_REF_BYTES) * windows) invalidIndex('counts do not match the header');
  if (typeof json !== 'object' || json === null) invalidIndex('no entries');
  const refs = version === 5 ? decodeRefs(body, refsAt, windows) : decodePackedRefs(body, refsAt, windows);
  return { entries: entriesOf(json.entries, header.entries, MAX_DEPS, invalidIndex), checkpoints: pointsOf(json.points, header.checkpoints, windows, invalidIndex), refs };
}

/** Version 6: lengths and cut hashes; the windows lie one after the other. */
function decodePackedRefs(body: Buffer, at: number, windows: number): WindowRef[] {
  // One copy for all the hashes, each a view of it.
  const table = Buffer.from(body.subarray(at, at + WINDOW_REF_BYTES * windows));
  const refs: WindowRef[] = new Array<WindowRef>(windows);
  let offset = 0;
  for (let i = 0; i < windows; i++) {
    const r = i * WINDOW_REF_BYTES;
    const length = table.readUInt32LE(r);
    refs[i] = { offset, length, sha256: table.subarray(r + 4, r + WINDOW_REF_BYTES) };
    offset += length;
  }
  return refs;
}

/** Versions 3 and 4: one tuple per entry, seek points in binary. */
function decodeTupleBody(version: number, tuples: EntryTuple[], body: Buffer, pointsAt: number, header: Header): Body {
  const { checkpoints, refs } = version === 3 ? decodeV3Points(body, pointsAt, header, invalidIndex) : decodePoints(body, pointsAt, header, invalidIndex);
  if (!Array.isArray(tuples) || tuples.length !== header.entries) invalidIndex('counts do not match the header');
  return { entries: tuples.map(fromTuple), checkpoints, refs };
}

function decodePoints(body: Buffer, at: number, header: Header, invalid: Invalid): { checkpoints: IndexPoint[]; refs: WindowRef[] } {
  const windows = header.windows ?? 0;
  const refsAt = at + POINT_BYTES * header.checkpoints;
  if (body.length !== refsAt + V5_WINDOW_REF_BYTES * windows) invalid('counts do not match the header');
  const checkpoints: IndexPoint[] = [];
  for (let i = 0; i < header.checkpoints; i++) {
    const p = at + i * POINT_BYTES;
    const window = body.readInt32LE(p + 17);
    if (window < -1 || window >= windows) invalid(`seek point ${i} names window ${window} of ${windows}`);
    checkpoints.push({ compressedOffset: body.readDoubleLE(p), bits: body.readUInt8(p + 8), uncompressedOffset: body.readDoubleLE(p + 9), window });
  }
  return { checkpoints, refs: decodeRefs(body, refsAt, windows) };
}

function decodeRefs(body: Buffer, at: number, windows: number): WindowRef[] {
  const refs: WindowRef[] = [];
  for (let i = 0; i < windows; i++) {
    const r = at + i * V5_WINDOW_REF_BYTES;
    refs.push({ offset: body.readDoubleLE(r), length: body.readUInt32LE(r + 8), sha256: Buffer.from(body.subarray(r + 12, r + V5_WINDOW_REF_BYTES)) });
  }
  return refs;
}

function decodeV3Points(body: Buffer, at: number, header: Header, invalid: Invalid): { checkpoints: IndexPoint[]; refs: WindowRef[] } {
  if (body.length !== at + V3_POINT_BYTES * header.checkpoints) invalid('counts do not match the header');
  const checkpoints: IndexPoint[] = [];
  const refs: WindowRef[] = [];
  for (let i = 0; i < header.checkpoints; i++) {
    const p = at + i * V3_POINT_BYTES;
    checkpoints.push({ compressedOffset: body.readDoubleLE(p), bits: body.readUInt8(p + 8), uncompressedOffset: body.readDoubleLE(p + 9), window: i });
    refs.push({ offset: body.readDoubleLE(p + 17), length: body.readUInt32LE(p + 25), sha256: Buffer.from(body.subarray(p + 29, p + V3_POINT_BYTES)) });
  }
  return { checkpoints, refs };
}
