import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { metadataDirFor } from '../hostfs/rootfs-paths.js';
import { readStatus } from '../mount/mount-status.js';
import { cacheDirOfMount } from '../mount/mount-registry.js';
import { defaultCacheDir } from '../util/paths.js';
import type { ImageConfigFile } from '../image/runtime-spec.js';

/**
 * The image config of a krgo mount (from its status) or of a pulled rootfs
 * (.ROOTFS.krgo/config.json), and whether its tree is read-only; undefined for anything else.
 * What krgo run and krgo bundle start from.
 */
export async function imageOfRoot(root: string): Promise<{ image: ImageConfigFile; readonly: boolean } | undefined> {
  const status = await readStatus(await cacheDirOfMount(root, undefined, defaultCacheDir()), root);
  if (status?.imageConfig) return { image: status.imageConfig, readonly: !status.writable };
  const configPath = join(metadataDirFor(root), 'config.json');
  if (!existsSync(configPath)) return undefined;
  return { image: JSON.parse(await readFile(configPath, 'utf8')) as ImageConfigFile, readonly: false };
}
