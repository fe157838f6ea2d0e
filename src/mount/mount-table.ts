import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { execFile } from 'node:child_process';

/** The file system type of krgo's FUSE mounts (fuse-native's `subtype` option): how they are told apart. */
export const KRGO_FSTYPE = 'fuse.krgo';
/** The source name of krgo's writable overlays (`krgo:<image>`): how they are told apart from others. */
export const KRGO_OVERLAY_SOURCE_PREFIX = 'krgo:';

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
}

/** /proc/self/mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Every mount of this mount namespace, in mount order (a later one on the same path hides an earlier). */
export function mountEntries(): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS (proc(5))
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    entries.push({ mountpoint: unescape(fields[4]!), fstype: fields[dash + 1]!, source: unescape(fields[dash + 2]!) });
  }
  return entries;
}

/** What is mounted on `mountpoint` now (the topmost mount), if anything; a dead FUSE mount still is. */
export function mountAt(mountpoint: string): MountEntry | undefined {
  const target = resolve(mountpoint);
  return mountEntries().filter((e) => e.mountpoint === target).pop();
}

export function isMounted(mountpoint: string): boolean {
  return mountAt(mountpoint) !== undefined;
}

/** krgo's FUSE mounts, and the overlays of its writable mounts (named `krgo:<image>`). */
export function isKrgoMount(entry: MountEntry | undefined): boolean {
  return entry?.fstype === KRGO_FSTYPE || (entry?.fstype === 'overlay' && entry.source.startsWith(KRGO_OVERLAY_SOURCE_PREFIX));
}

/** The lower FUSE tree of a writable mount (under the cache's writable/ directory): not a mount of its own to a user. */
export function isWritableLower(entry: MountEntry): boolean {
  return entry.fstype === KRGO_FSTYPE && /\/writable\/[0-9a-f]{16}\/lower$/.test(entry.mountpoint);
}

export type UnmountResult = 'unmounted' | 'busy';

/**
 * Unmounts a FUSE mount with fusermount. Not lazy unless asked: a busy mount is reported, not
 * detached under the programs using it (they would see SIGBUS and EIO). Also clears a dead
 * mount ("transport endpoint is not connected") that nothing uses.
 */
export function fusermountUnmount(mountpoint: string, lazy = false): Promise<UnmountResult> {
  return new Promise((res, rej) => {
    execFile('fusermount', [lazy ? '-uz' : '-u', resolve(mountpoint)], (err, _out, stderr) => {
      if (!err) return res('unmounted');
      const message = String(stderr).trim() || err.message;
      if (/busy/i.test(message)) return res('busy');
      rej(new Error(message));
    });
  });
}
