import { execFileSync } from 'node:child_process';

/** Node has no mknod(2) nor xattr calls: the coreutils and attr tools do them (rare in images). */
export function makeNode(host: string, kind: 'char' | 'block' | 'fifo', major: number, minor: number): void {
  const args = kind === 'fifo' ? [host, 'p'] : [host, kind === 'char' ? 'c' : 'b', String(major), String(minor)];
  execFileSync('mknod', ['-m', '0600', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Sets one xattr without following a symlink at `host`. */
export function setXattr(host: string, name: string, value: Buffer): void {
  const valueArgs = value.length ? ['-v', `0x${value.toString('hex')}`] : [];
  execFileSync('setfattr', ['-h', '-n', name, ...valueArgs, host], { stdio: ['ignore', 'ignore', 'pipe'] });
}
