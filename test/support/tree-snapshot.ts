import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { run } from './run.js';
import { decodeName, fsPath } from '../../src/tar/name-bytes.js';

export interface NodeRecord {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: string;
  /** Other paths sharing the inode, for hardlink groups. */
  hardlinks?: string;
  xattrs?: string;
  /** Nanoseconds; kept for files and symlinks (directory times change as children are added). */
  mtime?: string;
}

function typeOf(st: import('node:fs').BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function unescapeOctal(text: string): Buffer {
  const bytes: number[] = [];
  const raw = Buffer.from(text, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(raw.toString('latin1', i + 1, i + 4))) {
      bytes.push(parseInt(raw.toString('latin1', i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(raw[i]!);
  }
  return Buffer.from(bytes);
}

async function userXattrs(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const res = await run('getfattr', ['-R', '-h', '-d', '-m', '^user\\.', '-e', 'hex', '--absolute-names', root]);
  let current: string | undefined;
  for (const line of res.stdout.split('\n')) {
    // getfattr writes bytes outside printable ASCII as \ooo escapes: back to bytes, then to a name.
    if (line.startsWith('# file: ')) current = decodeName(unescapeOctal(line.slice(8))).slice(root.length) || '/';
    else if (current && line.includes('=')) out.set(current, `${out.get(current) ?? ''}${line};`);
  }
  return out;
}

/**
 * Every path under root with what the comparison against umoci checks. Directory mtimes only
 * with `dirMtimes` (two extractions of the same layers agree on them; a tree changed by hand
 * and one unpacked from its layers may not for untouched directories).
 */
export async function snapshotTree(root: string, options: { dirMtimes?: boolean } = {}): Promise<Map<string, NodeRecord>> {
  const records = new Map<string, NodeRecord>();
  const inodes = new Map<string, string[]>();
  const walk = async (rel: string): Promise<void> => {
    // Names as bytes, kept exactly (src/tar/name-bytes.ts): `caf\xe9` and `caf\xe8` stay apart.
    for (const name of (await readdir(fsPath(root + rel), { encoding: 'buffer' })).map(decodeName).sort()) {
      const path = `${rel}/${name}`;
      const host = fsPath(root + path);
      const st = await lstat(host, { bigint: true });
      const type = typeOf(st);
      const record: NodeRecord = { type, mode: (st.mode & 0o7777n).toString(8), uid: Number(st.uid), gid: Number(st.gid) };
      if (type === 'file') {
        record.size = Number(st.size);
        record.sha256 = createHash('sha256').update(await readFile(host)).digest('hex');
      }
      if (type === 'symlink') record.link = decodeName(await readlink(host, { encoding: 'buffer' }));
      if (type === 'char' || type === 'block') record.rdev = `${st.rdev >> 8n & 0xfffn}:${(st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n)}`;
      if (type !== 'dir' || options.dirMtimes) record.mtime = st.mtimeNs.toString();
      if (type !== 'dir' && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        inodes.set(key, [...(inodes.get(key) ?? []), path]);
      }
      records.set(path, record);
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    for (const path of group) records.get(path)!.hardlinks = group.filter((p) => p !== path).join(',');
  }
  for (const [path, xattrs] of await userXattrs(root)) {
    const record = records.get(path);
    // Listing order is the filesystem's; compare names sorted.
    if (record) record.xattrs = xattrs.split(';').filter(Boolean).sort().map((x) => `${x};`).join('');
  }
  return records;
}

/** Differences between two trees, one line per path and field; empty when equal. */
export function diffTrees(expected: Map<string, NodeRecord>, actual: Map<string, NodeRecord>, limit = 40): string[] {
  const diffs: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (!got) diffs.push(`missing ${path} (${want.type})`);
    else {
      for (const key of new Set([...Object.keys(want), ...Object.keys(got)]) as Set<keyof NodeRecord>) {
        if (want[key] !== got[key]) diffs.push(`${path}: ${key} expected ${String(want[key])} got ${String(got[key])}`);
      }
    }
    if (diffs.length >= limit) return diffs;
  }
  for (const path of actual.keys()) {
    if (!expected.has(path)) diffs.push(`extra ${path}`);
    if (diffs.length >= limit) break;
  }
  return diffs;
}
