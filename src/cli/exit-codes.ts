import { KrgoError, describeError, type ErrorCode } from '../errors.js';

/** The one place errors become exit codes (sysexits-style groups). */
const EXIT: Partial<Record<ErrorCode, number>> = {
  USAGE: 2,
  BAD_REFERENCE: 2,
  UNAUTHORIZED: 3,
  CREDENTIALS: 3,
  NOT_FOUND: 4,
  NO_MATCHING_PLATFORM: 4,
  NETWORK: 5,
  REGISTRY_ERROR: 5,
  DIGEST_MISMATCH: 6,
  SIZE_MISMATCH: 6,
  BAD_DIGEST: 6,
  BAD_TAR: 6,
  UNSUPPORTED_MANIFEST: 7,
  UNSUPPORTED_MEDIA_TYPE: 7,
  TARGET_EXISTS: 8,
  INTERRUPTED: 130,
};

export function reportFailure(err: unknown): number {
  const message = describeError(err);
  if (err instanceof KrgoError) {
    process.stderr.write(`krgo: ${message}\n`);
    return EXIT[err.code] ?? 1;
  }
  process.stderr.write(`krgo: unexpected error: ${err instanceof Error ? (err.stack ?? message) : message}\n`);
  return 1;
}
