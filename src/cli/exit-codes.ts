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
  GIT_STATE: 9,
  NOTHING_TO_COMMIT: 10,
  INTERRUPTED: 130,
};

/** System errors people can act on: said plainly, without a stack trace. */
const SYSTEM_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted (krgo needs root for owners, devices and FUSE)',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
  ENOTCONN: 'a dead mount is in the way (run krgo umount on it)',
};

export function reportFailure(err: unknown): number {
  const message = describeError(err);
  if (err instanceof KrgoError) {
    process.stderr.write(`krgo: ${message}\n`);
    return EXIT[err.code] ?? 1;
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code && SYSTEM_ERRORS[code]) {
    const path = (err as NodeJS.ErrnoException).path;
    process.stderr.write(`krgo: ${SYSTEM_ERRORS[code]}${path ? `: ${path}` : ''} (${code})\n`);
    return 1;
  }
  process.stderr.write(`krgo: unexpected error: ${err instanceof Error ? (err.stack ?? message) : message}\n`);
  return 1;
}
