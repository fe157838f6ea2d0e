import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/** `$XDG_CACHE_HOME/krgo`, else `~/.cache/krgo`. */
export function defaultCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache'), 'krgo');
}

/**
 * Where running mounts are announced, whatever cache dir they use: `$XDG_RUNTIME_DIR/krgo`, else
 * `/run/krgo` for root, else a per-user directory under the system's temp dir.
 */
export function runtimeDir(): string {
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg && xdg.startsWith('/')) return join(xdg, 'krgo');
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? '/run/krgo' : join(tmpdir(), `krgo-${uid}`);
}
