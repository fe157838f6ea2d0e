import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
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
 * Pass-through stream that hashes and counts what flows through it and fails at the end
 * when the digest or the size differ from what the manifest promised.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash;
  private seen = 0;
  constructor(
    private readonly expected: Digest,
    private readonly expectedSize: number | undefined,
    private readonly what: string,
    alreadyHashed?: { hash: Hash; bytes: number },
  ) {
    super();
    this.hash = alreadyHashed?.hash ?? createDigester(expected);
    this.seen = alreadyHashed?.bytes ?? 0;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.expectedSize !== undefined && this.seen > this.expectedSize) {
      done(new KrgoError('SIZE_MISMATCH', `${this.what} ${this.expected} is larger than its declared ${this.expectedSize} bytes`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    try {
      if (this.expectedSize !== undefined && this.seen !== this.expectedSize) {
        throw new KrgoError('SIZE_MISMATCH', `${this.what} ${this.expected} has ${this.seen} bytes, expected ${this.expectedSize}`);
      }
      checkDigest(this.expected, this.hash.digest('hex'), this.what);
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}
