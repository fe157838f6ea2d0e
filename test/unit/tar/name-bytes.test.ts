import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeName, encodeName, fromLatin1, nameByteLength, toLatin1 } from '../../../src/tar/name-bytes.js';

describe('file names as bytes', () => {
  it('keeps names that are not UTF-8 apart, and UTF-8 names as they are', () => {
    const latin1 = decodeName(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    const grave = decodeName(Buffer.from([0x63, 0x61, 0x66, 0xe8]));
    const replacement = decodeName(Buffer.from('caf\ufffd'));
    assert.equal(latin1, 'caf\udce9');
    assert.equal(new Set([latin1, grave, replacement]).size, 3, 'three names, not one');
    assert.equal(decodeName(Buffer.from('café-日本')), 'café-日本');
    assert.equal(nameByteLength('caf\udce9'), 4);
  });

  it('refuses overlong forms and encoded surrogates as UTF-8 (they become escaped bytes)', () => {
    for (const bytes of [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xb3, 0xa9], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xe2, 0x82]]) {
      const name = decodeName(Buffer.from(bytes));
      assert.equal(name.length, bytes.length, `each byte escaped: ${bytes}`);
      assert.deepEqual([...encodeName(name)], bytes);
    }
  });

  it('round-trips any bytes exactly, also through the Latin-1 form FUSE uses', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = randomBytes(1 + (i % 40));
      const name = decodeName(bytes);
      assert.ok(encodeName(name).equals(bytes), bytes.toString('hex'));
      assert.equal(fromLatin1(toLatin1(name)), name);
      assert.equal(Buffer.from(toLatin1(name), 'latin1').toString('hex'), bytes.toString('hex'));
    }
  });
});
