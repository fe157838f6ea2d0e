import { KrgoError } from '../errors.js';
import { ByteReader } from './byte-reader.js';
import { decodeName } from './name-bytes.js';
import type { TarEntry } from './tar-entry.js';
import { BLOCK, entryTypeOf, isZeroBlock, parseHeaderBlock, parsePaxRecords } from './tar-header.js';

/** Caps on metadata records so a crafted header cannot make us allocate without bound. */
const MAX_PAX_BYTES = 1 << 20;
const MAX_LONGNAME_BYTES = 64 * 1024;

export interface EntryData {
  /** The member's bytes as they stream by; must be consumed before the next member, or they are skipped. */
  chunks(): AsyncGenerator<Buffer>;
}

export interface ParseOptions {
  /** Told about members that are skipped (unknown types, sparse files). */
  warn?: (message: string) => void;
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/** A GNU long-name record without the NULs that end it. */
function trimNuls(data: Buffer): Buffer {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  return data.subarray(0, end);
}

/** `1700000000.123456789` (or negative) as whole seconds and nanoseconds, without float rounding. */
export function parsePaxTime(value: string): { sec: number; nsec: number } | undefined {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value);
  if (!m) return undefined;
  const whole = Number(m[2]);
  const nsec = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  if (!Number.isSafeInteger(whole)) return undefined;
  if (m[1] !== '-') return { sec: whole, nsec };
  return nsec === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1_000_000_000 - nsec };
}

function applyPax(entry: TarEntry, pax: Map<string, Buffer>): void {
  for (const [key, raw] of pax) {
    const value = raw.toString('utf8');
    switch (key) {
      // Names are bytes (PAX says UTF-8, but tar tools write whatever the file system held).
      case 'path':
        entry.path = decodeName(raw);
        break;
      case 'linkpath':
        entry.linkname = decodeName(raw);
        break;
      case 'size':
      case 'uid':
      case 'gid': {
        const n = Number(value);
        if (!Number.isSafeInteger(n) || n < 0) throw new KrgoError('BAD_TAR', `bad PAX ${key} ${JSON.stringify(value)}`);
        entry[key] = n;
        break;
      }
      case 'mtime':
      case 'atime': {
        const time = parsePaxTime(value);
        if (!time) throw new KrgoError('BAD_TAR', `bad PAX ${key} ${JSON.stringify(value)}`);
        entry[key] = time.sec;
        entry[key === 'mtime' ? 'mtimeNsec' : 'atimeNsec'] = time.nsec;
        break;
      }
      case 'uname':
        entry.uname = value;
        break;
      case 'gname':
        entry.gname = value;
        break;
      default:
        if (key.startsWith('SCHILY.xattr.')) entry.xattrs[key.slice('SCHILY.xattr.'.length)] = raw;
        else if (key.startsWith('LIBARCHIVE.xattr.')) {
          entry.xattrs[decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length))] = Buffer.from(value, 'base64');
        }
    }
  }
}

/**
 * Streams a tar archive, calling `onEntry` for each member with its metadata and data offset.
 * Handles ustar, PAX (local and global) and GNU long names; stops at the end-of-archive marker.
 */
export async function parseTar(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  onEntry: (entry: TarEntry, data: EntryData) => Promise<void> | void,
  options: ParseOptions = {},
): Promise<{ entries: number; endOffset: number }> {
  const reader = new ByteReader(source);
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let metaStart: number | undefined;
  let entries = 0;

  const readRecord = async (size: number, cap: number, what: string): Promise<Buffer> => {
    if (size > cap) throw new KrgoError('BAD_TAR', `${what} record of ${size} bytes exceeds the ${cap}-byte limit`);
    const data = await reader.read(size);
    if (data.length < size) throw new KrgoError('BAD_TAR', `tar archive ends inside a ${what} record`);
    await reader.skip(padding(size));
    return Buffer.from(data);
  };

  for (;;) {
    const headerOffset = reader.offset;
    const block = await reader.read(BLOCK);
    if (block.length === 0) break; // EOF without end marker: accepted, as GNU tar does.
    if (block.length < BLOCK) throw new KrgoError('BAD_TAR', `tar archive truncated at byte ${headerOffset}`);
    if (isZeroBlock(block)) {
      await reader.drain();
      break;
    }
    const raw = parseHeaderBlock(block, headerOffset);
    metaStart ??= headerOffset;
    switch (raw.typeflag) {
      case 'x':
        pax = parsePaxRecords(await readRecord(raw.size, MAX_PAX_BYTES, 'PAX'));
        continue;
      case 'g':
        globalPax = new Map([...globalPax, ...parsePaxRecords(await readRecord(raw.size, MAX_PAX_BYTES, 'PAX global'))]);
        metaStart = undefined;
        continue;
      case 'L':
        longName = decodeName(trimNuls(await readRecord(raw.size, MAX_LONGNAME_BYTES, 'GNU long name')));
        continue;
      case 'K':
        longLink = decodeName(trimNuls(await readRecord(raw.size, MAX_LONGNAME_BYTES, 'GNU long link')));
        continue;
    }
    const entry: TarEntry = {
      path: longName ?? raw.name,
      type: 'file',
      mode: raw.mode & 0o7777,
      uid: raw.uid,
      gid: raw.gid,
      size: raw.size,
      mtime: raw.mtime,
      mtimeNsec: 0,
      linkname: longLink ?? raw.linkname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs: {},
      ...(raw.uname ? { uname: raw.uname } : {}),
      ...(raw.gname ? { gname: raw.gname } : {}),
      headerOffset: metaStart,
      dataOffset: reader.offset,
    };
    applyPax(entry, globalPax);
    if (pax) applyPax(entry, pax);
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    metaStart = undefined;
    const type = entryTypeOf(raw.typeflag);
    // As in Go's archive/tar, only regular files (and unknown types) carry data.
    const dataSize = type === 'file' || type === undefined ? entry.size : 0;
    let consumed = 0;
    if (type === undefined) {
      options.warn?.(`skipping tar member ${JSON.stringify(entry.path)} of unsupported type ${JSON.stringify(raw.typeflag)}`);
    } else {
      entry.type = type;
      entry.size = dataSize;
      const data: EntryData = {
        async *chunks() {
          for await (const chunk of reader.take(dataSize - consumed)) {
            consumed += chunk.length;
            yield chunk;
          }
        },
      };
      await onEntry(entry, data);
      entries++;
    }
    const rest = dataSize - consumed;
    if ((await reader.skip(rest)) < rest) throw new KrgoError('BAD_TAR', `tar archive ends inside ${JSON.stringify(entry.path)}`);
    await reader.skip(padding(dataSize));
  }
  return { entries, endOffset: reader.offset };
}
