import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * krgo's package folder (its package.json, its native addon under build/), found upward from
 * the running module: the compiled tree (dist/src/…) and the CLI bundle (dist/cli/…) sit at
 * different depths.
 */
export function packageRoot(): string {
  return (found ??= findPackageRoot());
}

let found: string | undefined;

function findPackageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'krgo') return dir;
    if (dirname(dir) === dir) throw new Error(`krgo's package.json is not above ${start}`);
  }
}
