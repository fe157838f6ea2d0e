/** Stable error codes: the CLI maps them to exit codes, the FUSE adapter to errno. */
export type ErrorCode =
  | 'BAD_REFERENCE'
  | 'BAD_DIGEST'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'UNSUPPORTED_MANIFEST'
  | 'BAD_CONFIG'
  | 'NO_MATCHING_PLATFORM'
  | 'REGISTRY_ERROR'
  | 'NETWORK'
  | 'BAD_TAR'
  | 'UNSAFE_PATH'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'TARGET_EXISTS'
  | 'CREDENTIALS'
  | 'USAGE'
  | 'INTERRUPTED'
  | 'INDEX_INVALID'
  | 'GIT_FAILED'
  | 'GIT_STATE'
  | 'NOTHING_TO_COMMIT'
  | 'NOT_KRGO_MOUNT'
  | 'MOUNT_BUSY'
  /** Data that would take more than krgo's stated caps to use (a decompression bomb). */
  | 'TOO_LARGE'
  /** Root (or /dev/fuse) needed and missing: refused before anything is done. */
  | 'NEEDS_PRIVILEGE';

export class KrgoError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'KrgoError';
  }
}

export function isKrgoError(err: unknown, code?: ErrorCode): err is KrgoError {
  return err instanceof KrgoError && (code === undefined || err.code === code);
}

/** A message fit for a user: the error's own text plus the first cause that adds something. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return cause && !err.message.includes(cause) ? `${err.message} (${cause})` : err.message;
}
