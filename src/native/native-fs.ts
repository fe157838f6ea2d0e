import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The syscalls Node lacks (see native-notes/native-addon.md); the only importer of the addon. */
interface NativeFs {
  lutimesNs(path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  llistxattr(path: string): string[];
  lgetxattr(path: string, name: string): Buffer;
}

function load(): NativeFs {
  // dist/src/native/ → package root → build/Release
  const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
  return createRequire(import.meta.url)(join(root, 'build', 'Release', 'krgo_native.node')) as NativeFs;
}

export const nativeFs: NativeFs = load();

/** A time as whole seconds plus nanoseconds, so PAX times keep all their digits. */
export interface ExactTime {
  sec: number;
  nsec: number;
}
