import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { execFile } from 'node:child_process';

/** Whether `mountpoint` appears in /proc/mounts (a dead FUSE mount still does). */
export function isMounted(mountpoint: string): boolean {
  const target = resolve(mountpoint);
  // /proc/mounts escapes spaces and such as octal.
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1]?.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))) === target);
}

/** Lazy unmount with fusermount: also clears a dead mount ("transport endpoint is not connected"). */
export function fusermountUnmount(mountpoint: string): Promise<void> {
  return new Promise((res, rej) => {
    execFile('fusermount', ['-uz', resolve(mountpoint)], (err, _out, stderr) => (err ? rej(new Error(String(stderr).trim() || err.message)) : res()));
  });
}
