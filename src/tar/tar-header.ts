import { KrgoError } from '../errors.js';
import { decodeName } from './name-bytes.js';
import type { EntryType } from './tar-entry.js';

export const BLOCK = 512;

export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/** A NUL-terminated field as a name: bytes kept exactly (name-bytes.ts). */
function cString(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  return decodeName(block.subarray(start, end < 0 || end > start + length ? start + length : end));
}

/** Octal, or GNU base-256 when the high bit of the first byte is set. */
function numeric(block: Buffer, start: number, length: number, field: string): number {
  const first = block[start]!;
  if (first & 0x80) {
    if (first === 0xff) throw new KrgoError('BAD_TAR', `negative base-256 number in tar field ${field}`);
    let value = first & 0x7f;
    for (let i = start + 1; i < start + length; i++) {
      value = value * 256 + block[i]!;
      if (value > Number.MAX_SAFE_INTEGER) throw new KrgoError('BAD_TAR', `tar field ${field} is too large`);
    }
    return value;
  }
  const text = block.toString('latin1', start, start + length).replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new KrgoError('BAD_TAR', `tar field ${field} is not octal: ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function checksumMatches(block: Buffer): boolean {
  const stored = numeric(block, 148, 8, 'chksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

export function parseHeaderBlock(block: Buffer, offset: number): RawHeader {
  if (!checksumMatches(block)) throw new KrgoError('BAD_TAR', `bad tar header checksum at byte ${offset}: not a tar archive, or corrupt`);
  const magic = block.toString('latin1', 257, 263);
  let name = cString(block, 0, 100);
  // POSIX ustar splits long names into prefix/name; GNU tar uses those bytes for other fields.
  if (magic === 'ustar\0') {
    const prefix = cString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    name,
    mode: numeric(block, 100, 8, 'mode'),
    uid: numeric(block, 108, 8, 'uid'),
    gid: numeric(block, 116, 8, 'gid'),
    size: numeric(block, 124, 12, 'size'),
    mtime: numeric(block, 136, 12, 'mtime'),
    typeflag: String.fromCharCode(block[156]!),
    linkname: cString(block, 157, 100),
    uname: cString(block, 265, 32),
    gname: cString(block, 297, 32),
    devmajor: numeric(block, 329, 8, 'devmajor'),
    devminor: numeric(block, 337, 8, 'devminor'),
  };
}

export function entryTypeOf(typeflag: string): EntryType | undefined {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      return undefined;
  }
}

/** PAX extended header records: `LEN key=value\n`, values are raw bytes (xattrs may be binary). */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    if (space < 0) throw new KrgoError('BAD_TAR', 'malformed PAX record (no length)');
    const len = Number(data.toString('latin1', pos, space));
    if (!Number.isSafeInteger(len) || len <= space - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new KrgoError('BAD_TAR', 'malformed PAX record (bad length)');
    }
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw new KrgoError('BAD_TAR', 'malformed PAX record (no =)');
    records.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return records;
}
