import { createHash, type Hash } from 'node:crypto';
import { KrgoError } from './errors.js';

/** A validated content digest. Validation happens before a digest is ever used in a path or URL. */
export type Digest = string & { readonly __digest: unique symbol };

const DIGEST_PATTERNS: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export function parseDigest(value: string): Digest {
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  const pattern = DIGEST_PATTERNS[algorithm];
  if (colon < 0 || !pattern || !pattern.test(hex)) {
    throw new KrgoError('BAD_DIGEST', `invalid digest ${JSON.stringify(value.slice(0, 100))}`);
  }
  return value as Digest;
}

export function digestAlgorithm(digest: Digest): string {
  return digest.slice(0, digest.indexOf(':'));
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function sha256Of(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

export function createDigester(digest: Digest): Hash {
  return createHash(digestAlgorithm(digest));
}

/** Throws a DIGEST_MISMATCH naming the expected digest when content does not match. */
export function checkDigest(expected: Digest, actualHex: string, what: string): void {
  if (digestHex(expected) !== actualHex) {
    throw new KrgoError(
      'DIGEST_MISMATCH',
      `${what} ${expected} failed verification: content hashes to ${digestAlgorithm(expected)}:${actualHex}`,
    );
  }
}

/**
 * Passes a blob's bytes through, hashing and counting them, and fails when they exceed the
 * declared size or, at the end, when the size or the digest differ from what was promised.
 */
export async function* verifyChunks(source: AsyncIterable<Buffer>, expected: Digest, expectedSize: number, what: string): AsyncGenerator<Buffer> {
  const hash = createDigester(expected);
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.length;
    if (seen > expectedSize) throw new KrgoError('SIZE_MISMATCH', `${what} ${expected} is larger than its declared ${expectedSize} bytes`);
    hash.update(chunk);
    yield chunk;
  }
  if (seen !== expectedSize) throw new KrgoError('SIZE_MISMATCH', `${what} ${expected} has ${seen} bytes, expected ${expectedSize}`);
  checkDigest(expected, hash.digest('hex'), what);
}
