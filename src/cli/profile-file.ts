import { readFile } from 'node:fs/promises';
import { KrgoError } from '../errors.js';
import type { AccessProfile } from '../vfs/access-profile.js';

/** An access profile file named on the command line (JSON from --record-profile, or a list of paths). */
export async function readProfile(path: string): Promise<AccessProfile> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new KrgoError('USAGE', `cannot read the access profile ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  const { parseProfile } = await import('../vfs/access-profile.js');
  try {
    return parseProfile(text);
  } catch (err) {
    throw new KrgoError('USAGE', `${path}: ${(err as Error).message}`);
  }
}
