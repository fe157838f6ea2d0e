import { chmod, mkdir, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { metadataDirFor } from '../hostfs/rootfs-paths.js';
import type { ResolvedImage } from '../registry/client.js';
import { formatReference } from '../registry/reference.js';

/**
 * A rootfs being written: built in a staging directory beside it and moved into place only when
 * complete, so an interrupted run never leaves a ROOTFS that looks whole.
 */
export class RootfsTarget {
  readonly metadataDir: string;
  readonly staging: string;

  private constructor(readonly rootfs: string) {
    this.metadataDir = metadataDirFor(rootfs);
    this.staging = join(this.metadataDir, 'rootfs.partial');
  }

  /** Fails early, before any network work, when ROOTFS is taken (not absent, not an empty directory). */
  static async assertFree(rootfsPath: string): Promise<void> {
    const rootfs = resolve(rootfsPath);
    const info = await stat(rootfs).catch(() => undefined);
    if (info && (!info.isDirectory() || (await readdir(rootfs)).length > 0)) {
      throw new KrgoError('TARGET_EXISTS', `${rootfs} already exists and is not an empty directory; remove it or choose another with -r`);
    }
  }

  /** Checks ROOTFS again and makes a fresh staging directory. */
  static async prepare(rootfsPath: string): Promise<RootfsTarget> {
    await RootfsTarget.assertFree(rootfsPath);
    const target = new RootfsTarget(resolve(rootfsPath));
    await rm(target.staging, { recursive: true, force: true });
    await unlink(join(target.metadataDir, 'image.json')).catch(() => undefined);
    await mkdir(target.staging, { recursive: true, mode: 0o755 });
    await chmod(target.staging, 0o755);
    return target;
  }

  /** After a failure: the partial tree goes (a rerun rebuilds it; downloads resume on their own). */
  async abandon(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
  }

  /** Writes manifest and config beside the tree, moves it into place, then marks it complete. */
  async commit(image: ResolvedImage, how: 'pull' | 'materialize'): Promise<void> {
    await writeFile(join(this.metadataDir, 'manifest.json'), image.manifestBytes);
    await writeFile(join(this.metadataDir, 'config.json'), image.configBytes);
    await rename(this.staging, this.rootfs).catch((err: NodeJS.ErrnoException) => {
      throw new KrgoError('TARGET_EXISTS', `cannot move the tree into ${this.rootfs} (${err.code}); it is kept in ${this.staging}`, { cause: err });
    });
    const record = {
      reference: formatReference(image.reference),
      manifestDigest: image.manifestDigest,
      ...(image.indexDigest ? { indexDigest: image.indexDigest } : {}),
      ...(image.platform ? { platform: image.platform } : {}),
      layers: image.manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
      rootfs: this.rootfs,
      writtenBy: how,
      writtenAt: new Date().toISOString(),
    };
    // Written last: its presence says the rootfs is complete.
    await writeFile(join(this.metadataDir, 'image.json'), `${JSON.stringify(record, null, 2)}\n`);
  }
}
