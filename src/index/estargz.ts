import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { KrgoError } from '../errors.js';
import type { Digest } from '../digest.js';
import type { Descriptor } from '../image/manifest.js';
import { parseTar } from '../tar/tar-parser.js';
import { xattrsFromBase64, type EntryType, type StargzChunk, type TarEntry } from '../tar/tar-entry.js';
import { INDEX_FORMAT_VERSION, type LayerIndex } from './index-format.js';
import { packWindows } from './window-table.js';

import { TOC_DIGEST_ANNOTATION } from '../image/media-types.js';

export { TOC_DIGEST_ANNOTATION };
export const TOC_NAME = 'stargz.index.json';
export const FOOTER_SIZE = 51;
const MAX_TOC_BYTES = 256 * 1024 * 1024;

/** Reads byte ranges of the layer blob. */
export type BlobRange = (start: number, end: number) => Promise<Buffer>;

interface TocEntry {
  name: string;
  type: string;
  size?: number;
  modtime?: string;
  linkName?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  userName?: string;
  groupName?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Record<string, string>;
  offset?: number;
  innerOffset?: number;
  chunkOffset?: number;
  chunkSize?: number;
  chunkDigest?: string;
}

const TYPES: Record<string, EntryType> = { reg: 'file', dir: 'dir', symlink: 'symlink', hardlink: 'hardlink', char: 'char', block: 'block', fifo: 'fifo' };

/** The TOC offset from the 51-byte footer: an empty gzip member whose extra field is `%016xSTARGZ`. */
export function parseFooter(footer: Buffer): number | undefined {
  if (footer.length !== FOOTER_SIZE || footer[0] !== 0x1f || footer[1] !== 0x8b || !((footer[3] ?? 0) & 4)) return undefined;
  if (footer.readUInt16LE(10) !== 26 || footer.toString('latin1', 12, 14) !== 'SG' || footer.readUInt16LE(14) !== 22) return undefined;
  const payload = footer.toString('latin1', 16, 38);
  if (!/^[0-9a-f]{16}STARGZ$/.test(payload)) return undefined;
  return parseInt(payload.slice(0, 16), 16);
}

/** RFC 3339 with up to nanoseconds, without going through a float. */
function parseTime(text: string | undefined): { sec: number; nsec: number } {
  if (!text) return { sec: 0, nsec: 0 };
  const fraction = /\.(\d+)/.exec(text)?.[1] ?? '';
  const ms = Date.parse(text.replace(/\.\d+/, ''));
  return { sec: Number.isFinite(ms) ? Math.floor(ms / 1000) : 0, nsec: Number(fraction.slice(0, 9).padEnd(9, '0')) };
}

function toEntry(e: TocEntry, type: EntryType): TarEntry {
  const time = parseTime(e.modtime);
  const size = type === 'file' ? (e.size ?? 0) : 0;
  const entry: TarEntry = {
    path: e.name, type, mode: (e.mode ?? 0) & 0o7777, uid: e.uid ?? 0, gid: e.gid ?? 0, size, mtime: time.sec, mtimeNsec: time.nsec,
    linkname: e.linkName ?? '', devmajor: e.devMajor ?? 0, devminor: e.devMinor ?? 0,
    xattrs: xattrsFromBase64(e.xattrs ?? {}),
    ...(e.userName ? { uname: e.userName } : {}), ...(e.groupName ? { gname: e.groupName } : {}),
    headerOffset: -1, dataOffset: -1,
  };
  if (type === 'file' && size > 0) entry.chunks = [chunkOf(e, size)];
  return entry;
}

function chunkOf(e: TocEntry, fileSize: number): StargzChunk {
  if (e.offset === undefined) throw new KrgoError('INDEX_INVALID', `eStargz TOC entry ${JSON.stringify(e.name)} has data but no offset`);
  return {
    fileOffset: e.chunkOffset ?? 0,
    size: e.chunkSize || fileSize - (e.chunkOffset ?? 0),
    memberOffset: e.offset,
    innerOffset: e.innerOffset ?? 0,
    ...(e.chunkDigest ? { digest: e.chunkDigest } : {}),
  };
}

/**
 * An eStargz layer's index from its footer and TOC alone (two range requests, no full pass).
 * The TOC is checked against the layer's `toc.digest` annotation when there is one; the
 * TOC's own tar entry is kept, since it is part of the layer's tar stream.
 */
export async function readStargzIndex(layer: Descriptor, read: BlobRange): Promise<LayerIndex> {
  const bad = (why: string): never => {
    throw new KrgoError('INDEX_INVALID', `layer ${layer.digest} is not a usable eStargz layer: ${why}`);
  };
  if (layer.size < FOOTER_SIZE) bad('too small');
  const tocOffset = parseFooter(await read(layer.size - FOOTER_SIZE, layer.size));
  if (tocOffset === undefined || tocOffset >= layer.size - FOOTER_SIZE) return bad('no eStargz footer');
  if (layer.size - FOOTER_SIZE - tocOffset > MAX_TOC_BYTES) bad('TOC too large');
  const tocTar = gunzipSync(await read(tocOffset, layer.size - FOOTER_SIZE), { maxOutputLength: MAX_TOC_BYTES });
  let tocHeader: TarEntry | undefined;
  let json: Buffer | undefined;
  await parseTar(Readable.from([tocTar]), async (entry, data) => {
    if (entry.path !== TOC_NAME) return;
    tocHeader = entry;
    const parts: Buffer[] = [];
    for await (const chunk of data.chunks()) parts.push(Buffer.from(chunk));
    json = Buffer.concat(parts);
  });
  if (!tocHeader || !json) return bad(`no ${TOC_NAME} in the TOC member`);
  const expected = layer.annotations?.[TOC_DIGEST_ANNOTATION];
  const actual = `sha256:${createHash('sha256').update(json).digest('hex')}`;
  if (expected && expected !== actual) {
    throw new KrgoError('DIGEST_MISMATCH', `eStargz TOC of layer ${layer.digest} hashes to ${actual}, but the manifest says ${expected}`);
  }
  let toc: { version?: number; entries?: TocEntry[] };
  try {
    toc = JSON.parse(json.toString('utf8')) as typeof toc;
  } catch {
    return bad('TOC is not JSON');
  }
  const entries: TarEntry[] = [];
  const files = new Map<string, TarEntry>();
  for (const e of toc.entries ?? []) {
    if (e.type === 'chunk') {
      const file = files.get(e.name);
      if (!file?.chunks) bad(`chunk of ${JSON.stringify(e.name)} before its file`);
      file!.chunks!.push(chunkOf(e, file!.size));
      continue;
    }
    const type = TYPES[e.type];
    if (!type) bad(`unknown entry type ${JSON.stringify(e.type)}`);
    const entry = toEntry(e, type!);
    entries.push(entry);
    if (type === 'file') files.set(e.name, entry);
  }
  entries.push({ ...tocHeader, chunks: [{ fileOffset: 0, size: json.length, memberOffset: tocOffset, innerOffset: tocHeader.dataOffset }] });
  return {
    version: INDEX_FORMAT_VERSION,
    layerDigest: layer.digest as Digest,
    compressedSize: layer.size,
    uncompressedSize: 0,
    format: 'estargz',
    grid: 0,
    windowSpacing: 0,
    entries,
    checkpoints: [],
    windows: packWindows([]),
    tocOffset,
  };
}
