import { createRequire } from 'node:module';
import { join } from 'node:path';
import { krgoPackage } from '../util/package-root.js';

/** The syscalls Node lacks and zran-style gzip access (see native-notes/); the only importer of the addon. */
/** A path as a string, or as its bytes (names that are not UTF-8, see tar/name-bytes.ts). */
type NativePath = string | Buffer;

interface NativeFs {
  lutimesNs(path: NativePath, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  mknod(path: NativePath, mode: number, major: number, minor: number): void;
  lsetxattr(path: NativePath, name: string, value: Buffer): void;
  lremovexattr(path: NativePath, name: string): void;
  llistxattr(path: NativePath): string[];
  lgetxattr(path: NativePath, name: string): Buffer;
  gzipIndexerCreate(spanBytes: number, windowSpacingBytes: number): GzipIndexerHandle;
  gzipIndexerPush(indexer: GzipIndexerHandle, chunk: Buffer): void;
  gzipIndexerPull(indexer: GzipIndexerHandle, maxOut: number): Buffer;
  gzipIndexerTakePoints(indexer: GzipIndexerHandle): { in: number; bits: number; out: number; window?: Buffer }[];
  gzipIndexerState(indexer: GzipIndexerHandle): { totalIn: number; totalOut: number; atEnd: boolean };
  gzipExtract(data: Buffer, bits: number, window: Buffer, skip: number, length: number): Buffer;
  /** gzipExtract inflating on a libuv worker thread; `data` and `window` must not change meanwhile. */
  gzipExtractAsync(data: Buffer, bits: number, window: Buffer, skip: number, length: number): Promise<Buffer>;
}

/** Opaque native state of a gzip index build (zran), freed by the garbage collector. */
export type GzipIndexerHandle = { readonly __gzipIndexer: unique symbol };

function load(): NativeFs {
  return createRequire(import.meta.url)(join(krgoPackage().root, 'build', 'Release', 'krgo_native.node')) as NativeFs;
}

export const nativeFs: NativeFs = load();

/** A time as whole seconds plus nanoseconds, so PAX times keep all their digits. */
export interface ExactTime {
  sec: number;
  nsec: number;
}
