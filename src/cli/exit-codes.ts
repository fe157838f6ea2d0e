import { KrgoError, describeError, type ErrorCode } from '../errors.js';

/** The one place errors become exit codes (sysexits-style groups); exhaustive, so a new code needs its line. */
const EXIT: Record<ErrorCode, number> = {
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
  UNSAFE_PATH: 6,
  INDEX_INVALID: 6,
  TOO_LARGE: 6,
  UNSUPPORTED_MANIFEST: 7,
  BAD_CONFIG: 7,
  UNSUPPORTED_MEDIA_TYPE: 7,
  TARGET_EXISTS: 8,
  GIT_STATE: 9,
  GIT_FAILED: 1,
  NOTHING_TO_COMMIT: 10,
  NOT_KRGO_MOUNT: 2,
  MOUNT_BUSY: 11,
  NEEDS_PRIVILEGE: 12,
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
    return EXIT[err.code];
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code && SYSTEM_ERRORS[code]) {
    const path = (err as NodeJS.ErrnoException).path;
    process.stderr.write(`krgo: ${SYSTEM_ERRORS[code]}${path ? `: ${path}` : ''} (${code})\n`);
    return 1;
  }
  // No stack trace reaches a user; KRGO_DEBUG=1 shows it to whoever reports the bug.
  const stack = process.env['KRGO_DEBUG'] && err instanceof Error ? `\n${err.stack ?? ''}` : '';
  process.stderr.write(`krgo: unexpected error: ${message}${stack}\n`);
  return 1;
}
