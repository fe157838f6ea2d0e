import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from './process-identity.js';

/** A temp file of writeFileAtomically: `<name>.tmp-<pid>-<8 hex>`. */
const TEMP_FILE = /\.tmp-(\d+)-[0-9a-f]{8}$/;

/** Files a failed or killed run leaves: a corrupt partial download, a temp file whose writer died. */
function isGarbage(name: string): boolean {
  if (name.endsWith('.corrupt')) return true;
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
