import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a file whole or not at all: a temp file beside it (unique per process and call, so
 * concurrent writers never share one), renamed over the target. Makes the directory if needed.
 * Pieces are written one after another, never joined in memory first.
 */
export async function writeFileAtomically(path: string, data: Buffer | string | readonly Buffer[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    // A full disk (ENOSPC) must not leave the half-written temp file behind.
    await rm(tmp, { force: true });
    throw err;
  }
}
