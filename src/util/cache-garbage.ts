import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from './process-identity.js';
import { OLDEST_READABLE_INDEX_VERSION } from '../index/index-format.js';

/** A temp file of writeFileAtomically: `<name>.tmp-<pid>-<8 hex>`. */
const TEMP_FILE = /\.tmp-(\d+)-[0-9a-f]{8}$/;

/** A layer index file (or its windows) and its format version. */
const INDEX_FILE = /\.v(\d+)\.(idx|windows)$/;

/**
 * Files a failed or killed run leaves (a corrupt partial download, a temp file whose writer
 * died), and index files of a format this krgo no longer reads.
 */
function isGarbage(name: string): boolean {
  if (name.endsWith('.corrupt')) return true;
  const index = INDEX_FILE.exec(name);
  if (index && Number(index[1]) < OLDEST_READABLE_INDEX_VERSION) return true;
  const temp = TEMP_FILE.exec(name);
  return temp !== null && !processAlive(Number(temp[1]));
}

async function sweepDir(dir: string, depth: number): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && depth > 0) await sweepDir(path, depth - 1);
    else if (entry.isFile() && isGarbage(entry.name)) await rm(path, { force: true });
  }
}

/**
 * Removes what failed runs left in a cache directory's files and nothing else: corrupt partials,
 * temp files of dead processes. Partial downloads stay: the next pull of the blob resumes them.
 */
export async function sweepCacheGarbage(cacheDir: string): Promise<void> {
  await Promise.all([sweepDir(join(cacheDir, 'blobs'), 1), sweepDir(join(cacheDir, 'index'), 1), sweepDir(join(cacheDir, 'spans'), 1), sweepDir(join(cacheDir, 'mounts'), 0)]);
}
