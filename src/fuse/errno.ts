import { isKrgoError } from '../errors.js';

/** The one place errors become errno values (negative, as libfuse wants them). */
export const Errno = {
  EPERM: -1,
  ENOENT: -2,
  EIO: -5,
  EBADF: -9,
  EACCES: -13,
  ENOTDIR: -20,
  EISDIR: -21,
  EINVAL: -22,
  EFBIG: -27,
  EROFS: -30,
  ERANGE: -34,
  ENODATA: -61,
} as const;

/**
 * A read that fails (network, registry refusal, missing blob, corrupt data) is EIO: the file
 * exists, its bytes could not be had. The mount stays up and a later read may succeed. Bytes
 * that would take more than a read may inflate (a decompression bomb) are EFBIG.
 */
export function errnoForRead(err: unknown): number {
  return isKrgoError(err, 'TOO_LARGE') ? Errno.EFBIG : Errno.EIO;
}
