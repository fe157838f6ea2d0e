import type { TarEntry } from '../tar/tar-entry.js';
import { normalizedEntryPath } from '../tar/entry-path.js';
import { rangesOf, type AccessProfile } from './access-profile.js';

/** Uncompressed bytes of one layer a profile wants, tagged with the place of its file in the profile. */
export interface LayerRange {
  offset: number;
  length: number;
  order: number;
}

/** A path as its entry's place names it: components joined by `/`, no leading or trailing slash; not the root. */
function placeKey(path: string): string | undefined {
  const key = normalizedEntryPath(path);
  return key === '' ? undefined : key;
}

/**
 * Where a profile's files lie in the layers, from the layer indexes alone (no merged tree): each
 * path is taken from the topmost layer with an entry at that very path, a hard link from its
 * target in the same layer. A mount can then start a profile's fetches while its tree is still
 * being built. Recorded paths are the tree's own (a FUSE mount sees no symlinks in them), so this
 * finds what the tree would for a profile of this image; for one recorded elsewhere a miss only
 * fetches bytes nobody reads (the replay planned through the tree still fetches what it needs).
 * Files kept as eStargz chunks are left to that replay.
 */
export function profileInLayers(layers: readonly { entries: readonly TarEntry[] }[], profile: AccessProfile): LayerRange[][] {
  const wanted = new Map<string, number>();
  profile.files.forEach((file, order) => {
    const key = placeKey(file.path);
    if (key !== undefined && !wanted.has(key)) wanted.set(key, order);
  });
  const found: LayerRange[][] = layers.map(() => []);
  for (let layer = layers.length - 1; layer >= 0 && wanted.size; layer--) {
    const entries = layers[layer]!.entries;
    // The last entry at a path is what the layer leaves there.
    const here = new Map<string, TarEntry>();
    for (const entry of entries) {
      const key = placeKey(entry.path);
      if (key !== undefined && wanted.has(key)) here.set(key, entry);
    }
    const links = new Map<string, number[]>();
    const take = (entry: TarEntry, order: number) => {
      if (entry.type !== 'file' || entry.chunks) return;
      for (const [offset, length] of rangesOf(profile.files[order]!, entry.size)) found[layer]!.push({ offset: entry.dataOffset + offset, length, order });
    };
    for (const [key, entry] of here) {
      // This layer decides the path, whatever it holds there: lower layers are hidden under it.
      const order = wanted.get(key)!;
      wanted.delete(key);
      const target = entry.type === 'hardlink' ? placeKey(entry.linkname) : undefined;
      if (target === undefined) take(entry, order);
      else links.set(target, [...(links.get(target) ?? []), order]);
    }
    if (!links.size) continue;
    // A hard link's bytes are its target's, an earlier member of the same layer.
    const targets = new Map<string, TarEntry>();
    for (const entry of entries) {
      const key = entry.type === 'file' ? placeKey(entry.path) : undefined;
      if (key !== undefined && links.has(key)) targets.set(key, entry);
    }
    for (const [key, orders] of links) {
      const target = targets.get(key);
      if (target) for (const order of orders) take(target, order);
    }
  }
  return found;
}
