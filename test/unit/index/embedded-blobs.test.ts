import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EmbeddedBlobScanner } from '../../../src/index/embedded-blobs.js';

/** A manifest as krgo writes it: descriptors with embedded data, among other fields. */
function manifestWith(blobs: Buffer[]): Buffer {
  const layers = blobs.map((blob, i) => ({ mediaType: `application/x.test.${i}`, digest: `sha256:${'0'.repeat(64)}`, size: blob.length, data: blob.toString('base64') }));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, annotations: { note: 'a "data":"quoted" text is escaped in JSON' }, layers }));
}

function scan(chunks: Buffer[]): Buffer[] {
  const found: Buffer[] = [];
  const scanner = new EmbeddedBlobScanner((bytes) => found.push(bytes));
  for (const chunk of chunks) scanner.push(chunk);
  return found;
}

describe('blobs embedded in a manifest, found while it arrives', () => {
  const blobs = [randomBytes(3000), randomBytes(1), Buffer.alloc(0), randomBytes(700)];
  const manifest = manifestWith(blobs);

  it('whole: every blob, in order', () => {
    assert.deepEqual(scan([manifest]), blobs);
  });

  it('cut anywhere, in pieces of any size: the same blobs, each handed on once its closing quote is in', () => {
    for (const size of [1, 2, 3, 7, 8, 9, 64, 1000]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < manifest.length; at += size) chunks.push(manifest.subarray(at, at + size));
      assert.deepEqual(scan(chunks), blobs, `pieces of ${size} bytes`);
    }
    const first = manifest.indexOf('"', manifest.indexOf('"data":"') + 8);
    const found: Buffer[] = [];
    const scanner = new EmbeddedBlobScanner((bytes) => found.push(bytes));
    scanner.push(manifest.subarray(0, first));
    assert.equal(found.length, 0, 'not before the closing quote');
    scanner.push(manifest.subarray(first, first + 1));
    assert.deepEqual(found, [blobs[0]]);
  });

  it('a manifest without embedded data, or written with spaces, yields nothing', () => {
    assert.deepEqual(scan([Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [{ digest: 'sha256:00', size: 1 }] }))]), []);
    assert.deepEqual(scan([Buffer.from(JSON.stringify({ layers: [{ data: blobs[0]!.toString('base64') }] }, null, 2))]), []);
  });
});
