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
  EROFS: -30,
  ERANGE: -34,
  ENODATA: -61,
} as const;

export function errnoFor(err: unknown): number {
  if (isKrgoError(err, 'NOT_FOUND')) return Errno.ENOENT;
  // Network failures, corrupt data, digest errors: the read fails, the mount stays up.
  return Errno.EIO;
}
