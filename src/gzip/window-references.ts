/**
 * Which bytes of a deflate window a stream actually refers to. Inflating from a seek point needs
 * the 32 KiB of output before it only where the next 32 KiB of output copies from them (RFC 1951
 * §3.2.5: a distance reaches at most 32 KiB back); in Debian's layers that is 8–11% of the
 * window. A window with every other byte zeroed inflates the same output and deflates to a
 * fifth of the size (the idea of rapidgzip's sparse windows). Pure: no zlib, no I/O. Decoded
 * bit by bit after puff (zlib's contrib/puff, RFC 1951's reference decoder): slow, but run for
 * 32 KiB at a few hundred points, and checked against zlib's output by the caller's `expected`.
 */
import { WINDOW_BYTES } from '../index/window-table.js';

const MAX_BITS = 15;
const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

class Malformed extends Error {}

/** Codes this long or shorter are decoded by one lookup of the next bits; longer ones bit by bit. */
const FAST_BITS = 10;

/**
 * A canonical Huffman code: how many codes of each length and the symbols in code order (for
 * codes decoded bit by bit), and `fast`: for each value of the next FAST_BITS bits, the symbol
 * and length of the code they start with (symbol << 4 | length), 0 when that code is longer.
 */
interface Huffman {
  count: Uint16Array;
  symbol: Uint16Array;
  fast: Int32Array;
}

function huffman(lengths: ArrayLike<number>): Huffman {
  const count = new Uint16Array(MAX_BITS + 1);
  for (let s = 0; s < lengths.length; s++) count[lengths[s]!]!++;
  const offsets = new Uint16Array(MAX_BITS + 1);
  for (let len = 1; len < MAX_BITS; len++) offsets[len + 1] = offsets[len]! + count[len]!;
  const symbol = new Uint16Array(lengths.length);
  for (let s = 0; s < lengths.length; s++) if (lengths[s]) symbol[offsets[lengths[s]!]!++] = s;
  // Codes are read most significant bit first from a stream read least significant first: the
  // next bits, as a number, hold a code reversed.
  const fast = new Int32Array(1 << FAST_BITS);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= FAST_BITS; len++) {
    for (let n = 0; n < count[len]!; n++, k++, code++) {
      let reversed = 0;
      for (let b = 0; b < len; b++) reversed |= ((code >> b) & 1) << (len - 1 - b);
      for (let fill = reversed; fill < 1 << FAST_BITS; fill += 1 << len) fast[fill] = (symbol[k]! << 4) | len;
    }
    code <<= 1;
  }
  return { count, symbol, fast };
}

const FIXED_LITERALS = huffman([...Array<number>(144).fill(8), ...Array<number>(112).fill(9), ...Array<number>(24).fill(7), ...Array<number>(8).fill(8)]);
const FIXED_DISTANCES = huffman(Array<number>(30).fill(5));

/** The bits of a raw deflate stream, least significant first, from a bit offset into `input`. */
class BitReader {
  private at: number;
  private buffer = 0;
  private held = 0;

  /** `pointBits`: how many of the first byte's high bits belong to the stream (a seek point's `bits`; 0: all of it). */
  constructor(
    private readonly input: Buffer,
    pointBits: number,
  ) {
    this.at = 0;
    if (pointBits) this.bits(8 - pointBits);
  }

  bits(n: number): number {
    while (this.held < n) {
      if (this.at >= this.input.length) throw new Malformed('input ends');
      this.buffer |= this.input[this.at++]! << this.held;
      this.held += 8;
    }
    const value = this.buffer & ((1 << n) - 1);
    this.buffer >>>= n;
    this.held -= n;
    return value;
  }

  /** To the next byte boundary (a stored block's header). */
  align(): void {
    this.buffer = 0;
    this.held = 0;
  }

  byte(): number {
    if (this.at >= this.input.length) throw new Malformed('input ends');
    return this.input[this.at++]!;
  }

  decode(h: Huffman): number {
    while (this.held < FAST_BITS && this.at < this.input.length) {
      this.buffer |= this.input[this.at++]! << this.held;
      this.held += 8;
    }
    const entry = h.fast[this.buffer & ((1 << FAST_BITS) - 1)]!;
    if (entry !== 0 && (entry & 15) <= this.held) {
      this.buffer >>>= entry & 15;
      this.held -= entry & 15;
      return entry >> 4;
    }
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= MAX_BITS; len++) {
      code |= this.bits(1);
      const count = h.count[len]!;
      if (code - count < first) return h.symbol[index + (code - first)]!;
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw new Malformed('bad code');
  }
}

function dynamicCodes(stream: BitReader): [Huffman, Huffman] {
  const literals = stream.bits(5) + 257;
  const distances = stream.bits(5) + 1;
  const codeLengths = stream.bits(4) + 4;
  if (literals > 286 || distances > 30) throw new Malformed('bad counts');
  const lengthsOfLengths = new Uint8Array(19);
  for (let i = 0; i < codeLengths; i++) lengthsOfLengths[CODE_LENGTH_ORDER[i]!] = stream.bits(3);
  const lengthCode = huffman(lengthsOfLengths);
  const lengths = new Uint8Array(literals + distances);
  for (let i = 0; i < lengths.length; ) {
    const s = stream.decode(lengthCode);
    if (s < 16) lengths[i++] = s;
    else {
      if (s === 16 && i === 0) throw new Malformed('repeat with nothing before');
      const value = s === 16 ? lengths[i - 1]! : 0;
      const times = s === 16 ? 3 + stream.bits(2) : s === 17 ? 3 + stream.bits(3) : 11 + stream.bits(7);
      if (i + times > lengths.length) throw new Malformed('too many lengths');
      lengths.fill(value, i, i + times);
      i += times;
    }
  }
  return [huffman(lengths.subarray(0, literals)), huffman(lengths.subarray(literals))];
}

/**
 * `window` (the 32 KiB of output before a seek point) with every byte the stream from the point
 * does not copy zeroed. `compressed` starts at the point's byte (`pointByte`) and `bits` is the
 * point's own, as extractGzipRange takes them; `expected` is zlib's output from the
 * point (its first WINDOW_BYTES at most), which this decoder must reproduce exactly. Undefined
 * when it cannot tell (too little input, anything it does not parse, output that differs): the
 * caller then keeps the whole window.
 */
export function referencedWindow(window: Buffer, compressed: Buffer, bits: number, expected: Buffer): Buffer | undefined {
  const want = Math.min(expected.length, WINDOW_BYTES);
  const out = Buffer.alloc(window.length + want);
  window.copy(out);
  const used = new Uint8Array(window.length);
  let at = window.length;
  const end = window.length + want;
  try {
    const stream = new BitReader(compressed, bits);
    let last = 0;
    while (at < end && !last) {
      last = stream.bits(1);
      const type = stream.bits(2);
      if (type === 0) {
        stream.align();
        const length = stream.byte() | (stream.byte() << 8);
        const check = stream.byte() | (stream.byte() << 8);
        if ((length ^ 0xffff) !== check) throw new Malformed('bad stored length');
        for (let i = 0; i < length && at < end; i++) out[at++] = stream.byte();
        continue;
      }
      if (type === 3) throw new Malformed('bad block type');
      const [literalCode, distanceCode] = type === 1 ? [FIXED_LITERALS, FIXED_DISTANCES] : dynamicCodes(stream);
      for (;;) {
        const s = stream.decode(literalCode);
        if (s < 256) {
          if (at >= end) break;
          out[at++] = s;
          continue;
        }
        if (s === 256) break;
        const k = s - 257;
        if (k >= 29) throw new Malformed('bad length');
        const length = LENGTH_BASE[k]! + stream.bits(LENGTH_EXTRA[k]!);
        const d = stream.decode(distanceCode);
        if (d >= 30) throw new Malformed('bad distance');
        const from = at - (DIST_BASE[d]! + stream.bits(DIST_EXTRA[d]!));
        if (from < 0) throw new Malformed('distance too far back');
        for (let i = 0; i < length && at < end; i++) {
          if (from + i < window.length) used[from + i] = 1;
          out[at++] = out[from + i]!;
        }
        if (at >= end) break;
      }
    }
  } catch (err) {
    if (err instanceof Malformed) return undefined;
    throw err;
  }
  // A last block may end the member before `want` bytes (what follows is a new member, which
  // refers to nothing before it); what was produced must be zlib's, byte for byte.
  if (!out.subarray(window.length, at).equals(expected.subarray(0, at - window.length))) return undefined;
  const sparse = Buffer.alloc(window.length);
  for (let i = 0; i < window.length; i++) if (used[i]) sparse[i] = window[i]!;
  return sparse;
}
