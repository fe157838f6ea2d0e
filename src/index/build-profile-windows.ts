import type { Digest } from '../digest.js';
import { limitConcurrency } from '../util/concurrency.js';
import { planProfile, type AccessProfile } from '../vfs/access-profile.js';
import type { LayerReader } from '../vfs/layer-reader.js';
import type { MergedTree } from '../vfs/merged-tree.js';
import type { ImageReader } from '../vfs/image-reader.js';
import { MAX_PROFILE_WINDOWS, type ProfileWindows } from './profile-windows.js';
import { packWindow, tableOf, WINDOW_BYTES } from './window-table.js';
import { referencedWindow } from '../gzip/window-references.js';

/**
 * The window with only the bytes the stream from `out` copies kept (window-references.ts): a
 * fifth of the size once deflated. Undefined when that cannot be told (the whole window is kept).
 */
async function sparseWindow(reader: LayerReader, out: number, window: Buffer): Promise<Buffer | undefined> {
  const expectedLength = Math.min(WINDOW_BYTES, reader.uncompressedSize - out);
  const [stream, expected] = await Promise.all([reader.deflateAt(out, expectedLength), reader.read(out, expectedLength, out + expectedLength)]);
  return stream && referencedWindow(window, stream.compressed, stream.bits, expected);
}

/** An image as the builder reads it: its merged tree, and its reader. */
export interface ReadableImage {
  tree: MergedTree;
  reader: ImageReader;
}

/**
 * The seek windows a replay of `profile` wants (profile-windows.ts): for every stretch of cells
 * it reads whose first seek point the index keeps no window for, the 32 KiB before that point,
 * read through the layer readers (by range, like any read of a lazy mount). Layers the profile
 * reads first come first when there are more than a profile may hold. Undefined when none is
 * wanted (eStargz files, read by their chunks, each a gzip member of its own, want none).
 */
export async function buildProfileWindows(image: ReadableImage, profile: AccessProfile): Promise<{ windows: ProfileWindows; blob: Buffer } | undefined> {
  const { ranges } = image.reader.layerRanges(planProfile(image.tree, profile).reads);
  const wanted: { layer: Digest; reader: LayerReader; out: number }[] = [];
  for (const [reader, wantedRanges] of ranges) {
    for (const out of reader.coldStarts(wantedRanges)) wanted.push({ layer: reader.layerDigest, reader, out });
  }
  if (wanted.length === 0) return undefined;
  const chosen = wanted.slice(0, MAX_PROFILE_WINDOWS);
  const limit = limitConcurrency(4);
  const packed = await Promise.all(
    chosen.map(({ reader, out }) =>
      limit(async () => {
        const start = Math.max(0, out - WINDOW_BYTES);
        // No read-ahead: nothing past the window is wanted.
        const window = await reader.read(start, out - start, out);
        return packWindow((await sparseWindow(reader, out, window)) ?? window);
      }),
    ),
  );
  const table = tableOf(packed);
  const points = chosen.map(({ layer, out }, i) => {
    const ref = table.refs[i]!;
    return { layer, out, offset: ref.offset, length: ref.length, sha256: ref.sha256.toString('hex') };
  });
  return { windows: { digest: table.digest, size: table.size, points }, blob: table.blob! };
}
