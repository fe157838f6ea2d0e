import { KrgoError } from '../errors.js';

/** An inclusive-exclusive byte range of a blob: [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

/** The `Range` header asking for several ranges at once (RFC 9110 §14.1.2). */
export function rangesHeader(ranges: readonly ByteRange[]): string {
  return `bytes=${ranges.map((r) => `${r.start}-${r.end - 1}`).join(',')}`;
}

/** `Content-Range: bytes a-b/size` as [a, b+1), or undefined when it is not one. */
export function parseContentRange(value: string | undefined): ByteRange | undefined {
  const m = value ? /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value) : null;
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]) + 1;
  return end > start && Number.isSafeInteger(end) ? { start, end } : undefined;
}

/** The boundary of a `multipart/byteranges` body (RFC 9110 §14.6), or undefined for any other type. */
export function byteRangesBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/byteranges\s*;/i.test(contentType)) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  return m?.[1] ?? m?.[2];
}

/** Header bytes of one part, at most: a part's headers are two short lines. */
const MAX_PART_HEADERS = 4096;
/** Bytes between a part's data and the next delimiter (or before the first), at most. */
const MAX_FILLER = 1024;

/**
 * A streaming reader of a `multipart/byteranges` body. Each part's length is known from its
 * Content-Range, so its data is taken by count (never searched for the boundary, which the
 * data may contain); only the delimiters and headers between parts are parsed. Anything
 * malformed is an error (the caller fetches what it missed another way).
 */
export class ByteRangePartsReader {
  private state: 'delimiter' | 'headers' | 'data' | 'done' = 'delimiter';
  private pending = Buffer.alloc(0);
  private left = 0;
  private readonly delimiter: Buffer;

  constructor(
    boundary: string,
    private readonly onPart: (range: ByteRange) => void,
    private readonly onData: (chunk: Buffer) => void,
  ) {
    this.delimiter = Buffer.from(`--${boundary}`, 'latin1');
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  push(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const take = Math.min(this.left, buf.length);
        this.onData(buf.subarray(0, take));
        this.left -= take;
        buf = buf.subarray(take);
        if (this.left === 0) this.state = 'delimiter';
        continue;
      }
      if (this.state === 'delimiter') {
        const at = buf.indexOf(this.delimiter);
        // Need the delimiter and the two bytes after it (CRLF, or `--` closing the body).
        if (at < 0 || buf.length < at + this.delimiter.length + 2) {
          if (buf.length > MAX_FILLER + this.delimiter.length + 2) throw malformed('no part delimiter where one was due');
          break;
        }
        if (at > MAX_FILLER) throw malformed('stray bytes before a part delimiter');
        const after = buf.subarray(at + this.delimiter.length, at + this.delimiter.length + 2).toString('latin1');
        buf = buf.subarray(at + this.delimiter.length + 2);
        if (after === '--') this.state = 'done';
        else if (after === '\r\n') this.state = 'headers';
        else throw malformed('a part delimiter followed by neither CRLF nor --');
        continue;
      }
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_PART_HEADERS) throw malformed('part headers too long');
        break;
      }
      const headers = buf.subarray(0, end).toString('latin1').split('\r\n');
      const rangeLine = headers.find((h) => /^content-range\s*:/i.test(h));
      const range = parseContentRange(rangeLine?.slice(rangeLine.indexOf(':') + 1));
      if (!range) throw malformed('a part without a valid Content-Range');
      buf = buf.subarray(end + 4);
      this.onPart(range);
      this.left = range.end - range.start;
      this.state = 'data';
    }
    if (buf.length && this.state !== 'done') this.pending = Buffer.from(buf);
  }
}

function malformed(what: string): KrgoError {
  return new KrgoError('REGISTRY_ERROR', `malformed multipart/byteranges answer: ${what}`);
}
