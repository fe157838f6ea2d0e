import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KrgoError } from '../errors.js';
import { digestAlgorithm, digestHex, sha256Of, type Digest } from '../digest.js';
import { decodeIndex, encodeIndex, isCurrentFormat, peekIndex } from './index-codec.js';
import { INDEX_FORMAT_VERSION, LEGACY_INDEX_VERSIONS, type LayerIndex } from './index-format.js';
import { writeFileAtomically } from '../util/atomic-write.js';

/** A layer index as files to pass on (pushed as they are: the same bytes, the same digests). */
export interface IndexFiles {
  layerDigest: Digest;
  encoded: Buffer;
  windows: { digest: Digest; size: number; /** At hand when built here; an index from a registry has its windows there only. */ blob?: Buffer };
}

/** The files of an index decoded or built in this process. */
export function indexFilesOf(index: LayerIndex, encoded: Buffer = encodeIndex(index)): IndexFiles {
  const { digest, size, blob } = index.windows;
  return { layerDigest: index.layerDigest, encoded, windows: { digest, size, ...(blob ? { blob } : {}) } };
}

/**
 * Layer indexes in the cache directory, one file per layer digest, written atomically, with
 * their seek windows beside them when at hand (an index fetched from the registry comes
 * without: its windows are fetched by range when a read needs one).
 */
export class IndexStore {
  constructor(readonly cacheDir: string) {}

  pathFor(digest: Digest, version: number = INDEX_FORMAT_VERSION): string {
    return join(this.cacheDir, 'index', digestAlgorithm(digest), `${digestHex(digest)}.v${version}.idx`);
  }

  private windowsPathFor(digest: Digest, version: number = INDEX_FORMAT_VERSION): string {
    return this.pathFor(digest, version).replace(/\.idx$/, '.windows');
  }

  /**
   * Writes the index (and its windows, when at hand) atomically; returns the index's size in
   * bytes. `encoded` is its file when already at hand (fetched from the registry): written as is.
   */
  async save(index: LayerIndex, encoded?: Buffer): Promise<number> {
    // A file of a format before (an artifact an older krgo pushed) is stored in this one: the
    // cache holds one format, and what a push passes on from it is of that format.
    const file = encoded && isCurrentFormat(encoded) ? encoded : encodeIndex(index);
    // Windows first: an index on disk finds its windows there, or knows to fetch them (so the
    // windows of an index it replaces go: they would not match it).
    if (index.windows.blob) await writeFileAtomically(this.windowsPathFor(index.layerDigest), index.windows.blob);
    else await rm(this.windowsPathFor(index.layerDigest), { force: true });
    await writeFileAtomically(this.pathFor(index.layerDigest), file);
    return file.length;
  }

  /**
   * The index of a layer when a valid one is stored for exactly this digest and size. A corrupt
   * or foreign file is removed and reported through `onInvalid`, so the caller rebuilds it.
   */
  async load(digest: Digest, size: number, onInvalid: (why: string) => void = () => undefined): Promise<{ index: LayerIndex; bytes: number; encoded?: Buffer } | undefined> {
    const found = await this.loadVersion(digest, size, INDEX_FORMAT_VERSION, onInvalid);
    if (found) return found;
    // A cache from a krgo before (a format still read): converted once, so an upgrade does not
    // scan every layer again; its files are removed.
    for (const version of LEGACY_INDEX_VERSIONS) {
      const legacy = await this.loadVersion(digest, size, version, onInvalid);
      if (!legacy) continue;
      const bytes = await this.save(legacy.index);
      await rm(this.pathFor(digest, version), { force: true });
      await rm(this.windowsPathFor(digest, version), { force: true });
      return { index: legacy.index, bytes };
    }
    return undefined;
  }

  /**
   * The stored index of a layer as files, checked (envelope, checksum, layer, windows digest)
   * but not decoded: what a push passes on. Undefined when there is no current-version file.
   */
  async files(digest: Digest, size: number): Promise<IndexFiles | undefined> {
    const encoded = await readFile(this.pathFor(digest)).catch(() => undefined);
    if (!encoded) return undefined;
    try {
      const peeked = peekIndex(encoded);
      if (peeked.layerDigest !== digest || peeked.compressedSize !== size) return undefined;
      const blob = await readFile(this.windowsPathFor(digest)).catch(() => undefined);
      const windowsOk = blob && blob.length === peeked.windows.size && sha256Of(blob) === peeked.windows.digest;
      return { layerDigest: digest, encoded, windows: { ...peeked.windows, ...(windowsOk ? { blob } : {}) } };
    } catch (err) {
      if (err instanceof KrgoError && err.code === 'INDEX_INVALID') return undefined;
      throw err;
    }
  }

  private async loadVersion(digest: Digest, size: number, version: number, onInvalid: (why: string) => void): Promise<{ index: LayerIndex; bytes: number; encoded?: Buffer } | undefined> {
    const path = this.pathFor(digest, version);
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
      const windows = await readFile(this.windowsPathFor(digest, version)).catch(() => undefined);
      // No windows file: the index came from the registry, whose windows blob is read by range.
      // One that is not exactly the index's blob is damage: the index may have been built here,
      // with windows no registry holds, so both are dropped and rebuilt.
      if (windows) {
        if (windows.length !== index.windows.size || sha256Of(windows) !== index.windows.digest) {
          throw new KrgoError('INDEX_INVALID', `the seek windows of layer index ${path} are damaged`);
        }
        index.windows.blob = windows;
      }
      return { index, bytes: file.length, encoded: file };
    } catch (err) {
      if (!(err instanceof KrgoError && err.code === 'INDEX_INVALID')) throw err;
      onInvalid(err.message);
      await rm(path, { force: true });
      await rm(this.windowsPathFor(digest, version), { force: true });
      return undefined;
    }
  }
}
