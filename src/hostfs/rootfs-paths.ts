import { basename, dirname, join, resolve } from 'node:path';
import { parseReference, type ImageReference } from '../registry/reference.js';

/** The rootfs when none is given: the image's name, as in the original krgo (`debian` → ./debian). */
export function defaultRootfs(reference: ImageReference): string {
  return reference.repository.split('/').pop()!;
}

/** The rootfs of a command on `image`: the one given, else the image's name. */
export function rootfsOf(image: string, given: string | undefined): string {
  return given ?? defaultRootfs(parseReference(image));
}

/** krgo's own records sit beside the rootfs, never in it: `.NAME.krgo/`. */
export function metadataDirFor(rootfs: string): string {
  return join(dirname(rootfs), `.${basename(rootfs)}.krgo`);
}

/** The git repository of a `-g` rootfs (its work tree is the rootfs). */
export function gitDirFor(rootfs: string): string {
  return join(metadataDirFor(resolve(rootfs)), 'git');
}
