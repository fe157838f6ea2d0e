/**
 * File names are bytes on Linux and in tar; JavaScript strings are UTF-16. A name is kept as a
 * string that decodes every valid UTF-8 sequence as usual and each byte that is not part of one
 * as a lone surrogate U+DC80..U+DCFF (Python's "surrogateescape", PEP 383). The mapping is
 * lossless both ways: `caf\xe9`, `caf\xe8` and `caf\xef\xbf\xbd` stay three names, and
 * encodeName gives back the very bytes. Valid UTF-8 names are ordinary strings.
 */

const ESCAPE_BASE = 0xdc00;

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there starts none. */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return 1;
  const cont = (k: number) => i + k < bytes.length && (bytes[i + k]! & 0xc0) === 0x80;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const b1 = bytes[i + 1]!;
    // No overlong forms, no UTF-16 surrogates encoded in UTF-8 (they would collide with escapes).
    if ((b0 === 0xe0 && b1 < 0xa0) || (b0 === 0xed && b1 >= 0xa0)) return 0;
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const b1 = bytes[i + 1]!;
    if ((b0 === 0xf0 && b1 < 0x90) || (b0 === 0xf4 && b1 >= 0x90)) return 0;
    return 4;
  }
  return 0;
}

/** A name's bytes as a string: UTF-8 where valid, other bytes escaped as lone surrogates. */
export function decodeName(bytes: Uint8Array): string {
  let out = '';
  let plainFrom = 0;
  let i = 0;
  while (i < bytes.length) {
    const n = sequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += Buffer.from(bytes.buffer, bytes.byteOffset + plainFrom, i - plainFrom).toString('utf8') + String.fromCharCode(ESCAPE_BASE + bytes[i]!);
    i++;
    plainFrom = i;
  }
  return out + Buffer.from(bytes.buffer, bytes.byteOffset + plainFrom, bytes.length - plainFrom).toString('utf8');
}

/** Whether a name holds escaped bytes (so it is not valid UTF-8 as bytes). */
export function hasEscapedBytes(name: string): boolean {
  return /[\udc80-\udcff]/.test(name);
}

/** The bytes a name stands for (the inverse of decodeName). */
export function encodeName(name: string): Buffer {
  if (!hasEscapedBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let plainFrom = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // A lone low surrogate in the escape range (a high surrogate before it would make a pair).
    if (c >= 0xdc80 && c <= 0xdcff && !(i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff)) {
      parts.push(Buffer.from(name.slice(plainFrom, i), 'utf8'), Buffer.from([c - ESCAPE_BASE]));
      plainFrom = i + 1;
    }
  }
  parts.push(Buffer.from(name.slice(plainFrom), 'utf8'));
  return Buffer.concat(parts);
}

/** Byte length of a name as the kernel counts it. */
export function nameByteLength(name: string): number {
  return hasEscapedBytes(name) ? encodeName(name).length : Buffer.byteLength(name);
}

/** What to hand a file system call: the string itself when it is plain UTF-8, else its bytes. */
export function fsPath(path: string): string | Buffer {
  return hasEscapedBytes(path) ? encodeName(path) : path;
}

const ASCII = /^[\x00-\x7f]*$/;

/** A name handed over as Latin-1 (one character per byte, as krgo's FUSE build passes them). */
export function fromLatin1(text: string): string {
  return ASCII.test(text) ? text : decodeName(Buffer.from(text, 'latin1'));
}

/** A name as Latin-1 (one character per byte), for the FUSE binding. */
export function toLatin1(name: string): string {
  return ASCII.test(name) ? name : encodeName(name).toString('latin1');
}
