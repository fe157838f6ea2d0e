import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$XDG_CACHE_HOME/krgo`, else `~/.cache/krgo`. */
export function defaultCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache'), 'krgo');
}
