import { BLOCK } from './tar-header.js';
import { encodeName } from './name-bytes.js';
import type { EntryType } from './tar-entry.js';

export interface WriteEntry {
  /** Written verbatim: the writer never cleans names (tests craft hostile ones on purpose). */
  path: string;
  type: EntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds; a fraction is written to PAX with nanosecond digits. */
  mtime?: number;
  /** Exact nanoseconds past `mtime` (whole seconds), when a float cannot carry them. */
  mtimeNsec?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  content?: Buffer | string;
  xattrs?: Record<string, Buffer | string>;
  uname?: string;
  gname?: string;
}

const TYPEFLAG: Record<EntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const OCTAL_MAX = { 8: 0o7777777, 12: 0o77777777777 } as const;

function octal(block: Buffer, offset: number, width: 8 | 12, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'latin1');
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function header(name: string, typeflag: string, size: number, e: WriteEntry): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, (e.mode ?? (e.type === 'dir' ? 0o755 : 0o644)) & 0o7777);
  octal(block, 108, 8, Math.min(e.uid ?? 0, OCTAL_MAX[8]));
  octal(block, 116, 8, Math.min(e.gid ?? 0, OCTAL_MAX[8]));
  octal(block, 124, 12, size);
  octal(block, 136, 12, Math.max(0, Math.min(Math.floor(e.mtime ?? 0), OCTAL_MAX[12])));
  block.fill(0x20, 148, 156);
  block.write(typeflag, 156, 1, 'latin1');
  block.write(e.linkname ?? '', 157, 100, 'utf8');
  block.write('ustar\0', 257, 6, 'latin1');
  block.write('00', 263, 2, 'latin1');
  block.write(e.uname ?? '', 265, 32, 'utf8');
  block.write(e.gname ?? '', 297, 32, 'utf8');
  octal(block, 329, 8, e.devmajor ?? 0);
  octal(block, 337, 8, e.devminor ?? 0);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** Zero bytes that bring a member's data to a whole block. */
export const padding = (size: number): Buffer => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

/**
 * The header blocks of one member whose data is `size` bytes (a PAX header first when a field
 * does not fit ustar); the data and its padding follow, written by the caller.
 */
export function encodeHeader(e: WriteEntry, size: number): Buffer {
  const pax: Buffer[] = [];
  const fits = (s: string) => Buffer.byteLength(s) < 100 && /^[\x20-\x7e]*$/.test(s);
  // Names go out as the bytes they stand for (name-bytes.ts), not re-encoded.
  if (!fits(e.path)) pax.push(paxRecord('path', encodeName(e.path)));
  if (e.linkname && !fits(e.linkname)) pax.push(paxRecord('linkpath', encodeName(e.linkname)));
  if ((e.uid ?? 0) > OCTAL_MAX[8]) pax.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if ((e.gid ?? 0) > OCTAL_MAX[8]) pax.push(paxRecord('gid', Buffer.from(String(e.gid))));
  if (size > OCTAL_MAX[12]) pax.push(paxRecord('size', Buffer.from(String(size))));
  if (e.mtimeNsec) pax.push(paxRecord('mtime', Buffer.from(`${Math.floor(e.mtime ?? 0)}.${String(e.mtimeNsec).padStart(9, '0')}`)));
  else if (e.mtime !== undefined && !Number.isInteger(e.mtime)) pax.push(paxRecord('mtime', Buffer.from(e.mtime.toFixed(9).replace(/0+$/, ''))));
  for (const [k, v] of Object.entries(e.xattrs ?? {})) pax.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v)));
  const parts: Buffer[] = [];
  if (pax.length) {
    const body = Buffer.concat(pax);
    parts.push(header('PaxHeaders/entry', 'x', body.length, { path: '', type: 'file' }), body, padding(body.length));
  }
  const shortName = encodeName(e.path).subarray(0, 99).toString('utf8');
  const shortLink = e.linkname ? encodeName(e.linkname).subarray(0, 99).toString('utf8') : '';
  parts.push(header(shortName, TYPEFLAG[e.type], Math.min(size, OCTAL_MAX[12]), { ...e, linkname: shortLink }));
  return Buffer.concat(parts);
}

/** Serializes one member held in memory. */
export function encodeEntry(e: WriteEntry): Buffer {
  const content = e.type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
  return Buffer.concat([encodeHeader(e, content.length), content, padding(content.length)]);
}

/** A whole archive in memory, with the two-block end marker. */
export function buildTar(entries: WriteEntry[]): Buffer {
  return Buffer.concat([...entries.map(encodeEntry), END_OF_ARCHIVE]);
}
