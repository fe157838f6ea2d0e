import { crc32 } from 'node:zlib';

/** Writes bits LSB first, as deflate (RFC 1951 §3.1.1) packs them. */
class BitWriter {
  private readonly bytes: number[] = [];
  private acc = 0;
  private count = 0;

  bits(value: number, n: number): void {
    for (let i = 0; i < n; i++) {
      this.acc |= ((value >>> i) & 1) << this.count;
      if (++this.count === 8) this.flushByte();
    }
  }

  /** Huffman codes are sent most significant bit first (RFC 1951 §3.1.1). */
  code(value: number, n: number): void {
    for (let i = n - 1; i >= 0; i--) this.bits((value >>> i) & 1, 1);
  }

  private flushByte(): void {
    this.bytes.push(this.acc);
    this.acc = 0;
    this.count = 0;
  }

  finish(): Buffer {
    if (this.count > 0) this.flushByte();
    return Buffer.from(this.bytes);
  }
}

/** A literal byte with the fixed Huffman code (RFC 1951 §3.2.6). */
function literal(w: BitWriter, byte: number): void {
  if (byte < 144) w.code(0x30 + byte, 8);
  else w.code(0x190 + byte - 144, 9);
}

/**
 * A gzip member whose deflate stream is ONE fixed-Huffman block: `prefix` as literals, then
 * `zeros` zero bytes as back-references of 258 (distance 1), then `suffix`. zlib never writes
 * blocks this long; a crafted layer can, and no seek point can fall inside one block.
 */
export function oneBlockGzip(prefix: Buffer, zeros: number, suffix: Buffer): Buffer {
  const w = new BitWriter();
  w.bits(1, 1); // BFINAL
  w.bits(1, 2); // BTYPE 01: fixed Huffman
  for (const b of prefix) literal(w, b);
  let left = zeros;
  if (left > 0) {
    literal(w, 0);
    left--;
  }
  while (left >= 258) {
    w.code(0xc5, 8); // length code 285 (258): fixed code 11000101
    w.code(0, 5); // distance code 0 (distance 1)
    left -= 258;
  }
  while (left-- > 0) literal(w, 0);
  for (const b of suffix) literal(w, b);
  w.code(0, 7); // end of block (256)
  const deflated = w.finish();
  const whole = Buffer.concat([prefix, Buffer.alloc(zeros), suffix]);
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(whole) >>> 0, 0);
  trailer.writeUInt32LE(whole.length % 2 ** 32, 4);
  return Buffer.concat([header, deflated, trailer]);
}
