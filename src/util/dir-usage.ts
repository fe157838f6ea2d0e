import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** What a directory holds, all the way down: entries of any kind, regular files, and their bytes. */
export async function dirUsage(dir: string): Promise<{ entries: number; files: number; bytes: number }> {
  let entries = 0;
  let files = 0;
  let bytes = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    entries++;
    if (!e.isFile()) continue;
    files++;
    bytes += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return { entries, files, bytes };
}
