import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KrgoError } from '../errors.js';
import { digestAlgorithm, digestHex, type Digest } from '../digest.js';
import { decodeIndex, encodeIndex } from './index-codec.js';
import { INDEX_FORMAT_VERSION, type LayerIndex } from './layer-index.js';

/** Layer indexes in the cache directory, one file per layer digest, written atomically. */
export class IndexStore {
  constructor(readonly cacheDir: string) {}

  pathFor(digest: Digest): string {
    return join(this.cacheDir, 'index', digestAlgorithm(digest), `${digestHex(digest)}.v${INDEX_FORMAT_VERSION}.idx`);
  }

  /**
   * Writes the index atomically; returns its size in bytes. `encoded` is its file when already
   * at hand (fetched from the registry and decoded to check it): written as is.
   */
  async save(index: LayerIndex, encoded: Buffer = encodeIndex(index)): Promise<number> {
    const path = this.pathFor(index.layerDigest);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, encoded);
    await rename(tmp, path);
    return encoded.length;
  }

  /**
   * The index of a layer when a valid one is stored for exactly this digest and size. A corrupt
   * or foreign file is removed and reported through `onInvalid`, so the caller rebuilds it.
   */
  async load(digest: Digest, size: number, onInvalid: (why: string) => void = () => undefined): Promise<{ index: LayerIndex; bytes: number } | undefined> {
    const path = this.pathFor(digest);
    let file: Buffer;
    try {
      file = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const index = decodeIndex(file);
      if (index.layerDigest !== digest || index.compressedSize !== size) {
        throw new KrgoError('INDEX_INVALID', `layer index ${path} describes ${index.layerDigest} (${index.compressedSize} bytes), not ${digest} (${size} bytes)`);
      }
      return { index, bytes: file.length };
    } catch (err) {
      if (!(err instanceof KrgoError && err.code === 'INDEX_INVALID')) throw err;
      onInvalid(err.message);
      await rm(path, { force: true });
      return undefined;
    }
  }
}
