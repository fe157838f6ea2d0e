import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ByteRangePartsReader, byteRangesBoundary, parseContentRange, rangesHeader, type ByteRange } from '../../../src/registry/byte-range-parts.js';

const BOUNDARY = 'f669439b2d881ef0';

/** A multipart/byteranges body as Go's http.ServeContent writes one (RFC 9110 §14.6). */
function body(blob: Buffer, ranges: ByteRange[], boundary = BOUNDARY): Buffer {
  const parts: Buffer[] = [];
  ranges.forEach((r, k) => {
    parts.push(Buffer.from(`${k ? '\r\n' : ''}--${boundary}\r\nContent-Range: bytes ${r.start}-${r.end - 1}/${blob.length}\r\nContent-Type: application/octet-stream\r\n\r\n`));
    parts.push(blob.subarray(r.start, r.end));
  });
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return Buffer.concat(parts);
}

function read(stream: Buffer, cut: number, boundary = BOUNDARY): { parts: { range: ByteRange; data: Buffer }[]; finished: boolean } {
  const parts: { range: ByteRange; data: Buffer[] }[] = [];
  const reader = new ByteRangePartsReader(
    boundary,
    (range) => parts.push({ range, data: [] }),
    (chunk) => parts[parts.length - 1]!.data.push(Buffer.from(chunk)),
  );
  for (let at = 0; at < stream.length; at += cut) reader.push(stream.subarray(at, at + cut));
  return { parts: parts.map((p) => ({ range: p.range, data: Buffer.concat(p.data) })), finished: reader.finished };
}

describe('multipart/byteranges answers', () => {
  // Data that holds the boundary itself: parts are taken by their length, never searched.
  const blob = Buffer.concat([Buffer.from(`x\r\n--${BOUNDARY}\r\nContent-Range: bytes 0-1/2\r\n\r\n`), Buffer.alloc(3000, 7), Buffer.from(`--${BOUNDARY}--`)]);
  const ranges = [
    { start: 0, end: 60 },
    { start: 1000, end: 1001 },
    { start: 2900, end: blob.length },
  ];

  it('parts come out whole and in order, however the stream is cut', () => {
    const stream = body(blob, ranges);
    for (const cut of [1, 2, 3, 7, 64, 1000, stream.length]) {
      const { parts, finished } = read(stream, cut);
      assert.equal(finished, true, `cut ${cut}`);
      assert.deepEqual(
        parts.map((p) => p.range),
        ranges,
        `cut ${cut}`,
      );
      parts.forEach((p) => assert.ok(p.data.equals(blob.subarray(p.range.start, p.range.end)), `cut ${cut}: part ${p.range.start}`));
    }
  });

  it('a preamble before the first part is skipped', () => {
    const { parts } = read(Buffer.concat([Buffer.from('this is a preamble\r\n'), body(blob, ranges)]), 5);
    assert.equal(parts.length, 3);
  });

  it('malformed answers are refused, not guessed at', () => {
    const noRange = Buffer.from(`--${BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nabc\r\n--${BOUNDARY}--\r\n`);
    assert.throws(() => read(noRange, 4), { code: 'REGISTRY_ERROR', message: /without a valid Content-Range/ });
    const endless = Buffer.concat([Buffer.from(`--${BOUNDARY}\r\n`), Buffer.alloc(10_000, 'h')]);
    assert.throws(() => read(endless, 100), /part headers too long/);
    const junk = Buffer.concat([body(blob, ranges.slice(0, 1)).subarray(0, -(BOUNDARY.length + 8)), Buffer.alloc(5000, 'j')]);
    assert.throws(() => read(junk, 512), /delimiter/);
    const badAfter = Buffer.from(`--${BOUNDARY}XY`);
    assert.throws(() => read(badAfter, 100), /neither CRLF nor --/);
  });

  it('headers: Range out, Content-Range and the boundary in', () => {
    assert.equal(rangesHeader(ranges), `bytes=0-59,1000-1000,2900-${blob.length - 1}`);
    assert.deepEqual(parseContentRange('bytes 10-19/100'), { start: 10, end: 20 });
    assert.deepEqual(parseContentRange('bytes 10-19/*'), { start: 10, end: 20 });
    assert.equal(parseContentRange('bytes 20-10/100'), undefined);
    assert.equal(parseContentRange('bytes */100'), undefined);
    assert.equal(byteRangesBoundary('multipart/byteranges; boundary=abc'), 'abc');
    assert.equal(byteRangesBoundary('multipart/byteranges; boundary="a b"'), 'a b');
    assert.equal(byteRangesBoundary('application/octet-stream'), undefined);
    assert.equal(byteRangesBoundary('multipart/byteranges'), undefined);
  });
});
