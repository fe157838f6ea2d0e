import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * krgo's package folder (its package.json, its native addon under build/) and version, found
 * upward from the running module: the compiled tree (dist/src/…) and the CLI bundle (dist/cli/…)
 * sit at different depths.
 */
export function krgoPackage(): { root: string; version: string } {
  return (found ??= findPackage());
}

let found: { root: string; version: string } | undefined;

function findPackage(): { root: string; version: string } {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
      if (name === 'krgo') return { root: dir, version: version ?? 'unknown' };
    }
    if (dirname(dir) === dir) throw new Error(`krgo's package.json is not above ${start}`);
  }
}
