import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { buildTar, type WriteEntry } from '../../src/tar/tar-writer.js';
import type { FixtureImage } from './oci-layout.js';

/** Debian's busybox-static: a real binary, so a real shell can run in what krgo writes. */
export function busyboxBinary(): Buffer {
  return readFileSync('/bin/busybox');
}

const T = 1_700_000_000;
export const dir = (path: string, extra: Partial<WriteEntry> = {}): WriteEntry => ({ path, type: 'dir', mode: 0o755, mtime: T, ...extra });
export const file = (path: string, content: string | Buffer, extra: Partial<WriteEntry> = {}): WriteEntry => ({ path, type: 'file', mode: 0o644, mtime: T, content, ...extra });
const link = (path: string, target: string, extra: Partial<WriteEntry> = {}): WriteEntry => ({ path, type: 'symlink', linkname: target, mode: 0o777, mtime: T, ...extra });
const hard = (path: string, target: string): WriteEntry => ({ path, type: 'hardlink', linkname: target, mtime: T });

const LONG_DIR = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const LONG_NAME = `${LONG_DIR}/${'f'.repeat(120)}.txt`;

/** Every entry type and layer rule the foundation issue lists, over three layers. */
export function edgeCaseLayers(): Buffer[] {
  const base: WriteEntry[] = [
    dir('./'),
    dir('bin'),
    file('bin/busybox', busyboxBinary(), { mode: 0o755 }),
    link('bin/sh', 'busybox'),
    link('bin/ls', '/bin/busybox'),
    dir('etc'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n'),
    file('etc/shadow', 'root:*:19000:0:99999:7:::\n', { mode: 0o640, gid: 42 }),
    link('etc/alternative', '/usr/lib'),
    dir('usr'),
    dir('usr/lib'),
    file('usr/lib/libfake.so.1', 'ELF-ish'),
    link('lib', 'usr/lib'),
    dir('usr/bin'),
    file('usr/bin/setuid-tool', 'suid', { mode: 0o4755, uid: 0, gid: 0 }),
    file('usr/bin/setgid-tool', 'sgid', { mode: 0o2711, gid: 5 }),
    dir('tmp', { mode: 0o1777 }),
    dir('home'),
    dir('home/user', { mode: 0o700, uid: 1000, gid: 1000 }),
    file('home/user/.profile', 'export PS1=$\n', { uid: 1000, gid: 1000, mode: 0o600 }),
    file('home/user/bigid', 'big ids need PAX', { uid: 3_000_000, gid: 3_000_001 }),
    dir('data'),
    file('data/empty', ''),
    dir('data/empty-dir', { mode: 0o750 }),
    file('data/h1', 'hardlinked content v1'),
    hard('data/h2', 'data/h1'),
    file('data/todelete', 'bye'),
    dir('data/tododir'),
    file('data/tododir/child', 'bye too'),
    file('data/file2dir', 'will become a dir'),
    dir('data/dir2file'),
    file('data/dir2file/inner', 'will vanish'),
    file('data/link2file-target', 'target'),
    link('data/link2file', 'link2file-target'),
    file('data/file2link', 'will become a link'),
    file('data/xattr-file', 'has xattrs', { xattrs: { 'user.krgo.test': 'hello', 'user.krgo.binary': Buffer.from([0, 1, 2, 255]) } }),
    file('data/fraction-mtime', 'pax mtime with a fraction', { mtime: T + 0.5 }),
    file('data/nanosecond-mtime', 'every digit counts', { mtime: T, mtimeNsec: 123456789 }),
    // A symlink's tar mode means nothing on Linux: lstat shows 0777.
    link('data/link-mode-0644', 'h1', { mode: 0o644 }),
    // A hardlink pair that a later layer splits, keeping the bytes: git sees no change there.
    file('data/pair-a', 'same bytes, two names'),
    hard('data/pair-b', 'data/pair-a'),
    dir('data/wh-dir'),
    file('data/wh-dir/lower', 'hidden by a whiteout of its directory'),
    file('data/caf\u00e9-\u65e5\u672c.txt', 'unicode name'),
    { path: 'data/fifo', type: 'fifo', mode: 0o644, mtime: T },
    dir('dev'),
    { path: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3, mtime: T },
    { path: 'dev/loop0', type: 'block', mode: 0o660, devmajor: 7, devminor: 0, gid: 6, mtime: T },
    dir(LONG_DIR.split('/').slice(0, 1).join('/')),
    dir(LONG_DIR.split('/').slice(0, 2).join('/')),
    dir(LONG_DIR),
    file(LONG_NAME, 'long name via PAX'),
    link(`${LONG_DIR}/long-link`, `/${LONG_NAME}`),
    dir('opaque'),
    file('opaque/lower-a', 'a'),
    dir('opaque/lower-sub'),
    file('opaque/lower-sub/x', 'x'),
    dir('late-opq'),
    file('late-opq/lower', 'hidden by a late opaque marker'),
    // no parent directory entry for implicit/: created on the way
    file('implicit/nested/file', 'parents made by the extractor'),
  ];
  const second: WriteEntry[] = [
    file('data/.wh.todelete', ''),
    file('data/.wh.tododir', ''),
    dir('opaque', { mode: 0o711 }),
    file('opaque/.wh..wh..opq', ''),
    file('opaque/upper-c', 'c'),
    dir('data/file2dir'),
    file('data/file2dir/child', 'now a dir'),
    file('data/dir2file', 'now a file'),
    file('data/link2file', 'replaced the symlink'),
    link('data/file2link', '../etc/passwd'),
    dir('etc', { mode: 0o750 }),
    file('etc/hostname', 'krgo\n'),
    file('etc/shadow', 'root:*:19000:0:99999:7:::\n', { mode: 0o600, gid: 42 }),
    hard('data/h3', 'data/h1'),
    file('data/h1', 'hardlinked content v2: h2 and h3 keep v1'),
    file('lib/through-symlink', 'written through the lib -> usr/lib symlink'),
    file('data/added-later', 'layer 2'),
    file('bin/.wh.ls', ''),
    // A whiteout hides lower layers only: what this same layer added before it stays (umoci too).
    file('data/same-layer', 'added, then whited out in the same layer: kept'),
    file('data/.wh.same-layer', ''),
    file('data/wh-dir/upper', 'added below a directory whited out later in the same layer: kept'),
    file('data/.wh.wh-dir', ''),
    file('data/pair-b', 'same bytes, two names'),
  ];
  const third: WriteEntry[] = [
    file('data/.wh.added-later', ''),
    file('late-opq/upper', 'kept: opaque applies to lower layers only'),
    file('late-opq/.wh..wh..opq', ''),
    file('data/third', 'layer 3', { mode: 0o600, uid: 33, gid: 33 }),
  ];
  return [buildTar(base), buildTar(second), buildTar(third)];
}

export function edgeCaseImage(compressions: FixtureImage['layers'][number]['compression'][] = ['gzip', 'gzip', 'gzip']): FixtureImage {
  return { layers: edgeCaseLayers().map((tar, i) => ({ tar, compression: compressions[i] ?? 'gzip' })) };
}

/**
 * File names that are not UTF-8, as bytes (lone surrogates U+DC80..U+DCFF stand for single
 * bytes, src/tar/name-bytes.ts): `caf\xe9` and `caf\xe8` (Latin-1), next to `caf\xef\xbf\xbd`
 * (valid UTF-8 of U+FFFD, what a lossy decoder would turn both into) and `café` in UTF-8.
 */
export function nonUtf8Layers(): Buffer[] {
  const base: WriteEntry[] = [
    dir('names'),
    file('names/caf\udce9', 'latin-1 e acute'),
    file('names/caf\udce8', 'latin-1 e grave'),
    file('names/caf\ufffd', 'U+FFFD, valid UTF-8'),
    file('names/caf\u00e9', 'UTF-8 e acute'),
    dir('names/dir-\udcff'),
    file('names/dir-\udcff/inner-\udc80', 'in a directory whose name is not UTF-8'),
    link('names/link-to-latin1', 'caf\udce9'),
    link('names/link-\udcfe', '/names/dir-\udcff'),
    hard('names/hard-\udce9', 'names/caf\udce9'),
  ];
  const second: WriteEntry[] = [file('names/.wh.caf\udce8', ''), file('names/dir-\udcff/added-\udcc0', 'layer 2')];
  return [buildTar(base), buildTar(second)];
}

/** Bytes that do not compress (the same every run): a stretch of a layer no read near it shares. */
function incompressible(length: number, seed: string): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0, have = 0; have < length; i++, have += 32) parts.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(parts).subarray(0, length);
}

/**
 * C headers including each other (`<sys/mid.h>`, then `"leaf.h"` beside it), each 1 MiB of
 * incompressible filler apart in the layer: reading one fetches nothing of the others by itself.
 */
export function headerImage(): FixtureImage {
  const entries: WriteEntry[] = [
    dir('usr'),
    dir('usr/include'),
    dir('usr/include/sys'),
    dir('usr/share'),
    file('usr/include/top.h', '#ifndef TOP_H\n#define TOP_H\n#include <sys/mid.h>\n#endif\n'),
    file('usr/share/filler-1.bin', incompressible(1024 * 1024, 'filler-1')),
    file('usr/include/sys/mid.h', '#pragma once\n#include "leaf.h"\n'),
    file('usr/share/filler-2.bin', incompressible(1024 * 1024, 'filler-2')),
    file('usr/include/sys/leaf.h', 'int leaf;\n'),
  ];
  return { layers: [{ tar: buildTar(entries) }] };
}

/** A small real image: busybox with its applet links, for running a shell in the result. */
export function busyboxImage(): FixtureImage {
  const entries: WriteEntry[] = [dir('bin'), file('bin/busybox', busyboxBinary(), { mode: 0o755 })];
  for (const applet of ['sh', 'ls', 'cat', 'echo', 'id', 'uname', 'stat']) entries.push(link(`bin/${applet}`, 'busybox'));
  entries.push(dir('etc'), file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n'), dir('tmp', { mode: 0o1777 }));
  const second = [file('etc/motd', 'hello from krgo\n'), dir('root', { mode: 0o700 })];
  return { layers: [{ tar: buildTar(entries) }, { tar: buildTar(second) }] };
}

/**
 * One hostile layer stack per escape class. `hostDir` is a directory on the host that must come
 * through untouched; each image also carries a harmless file that must still be written.
 */
export function hostileImages(hostDir: string): Record<string, Buffer[]> {
  const canary = file('canary', 'written');
  return {
    'dotdot-traversal (CVE-2016-7569 class)': [buildTar([canary, file(`../../../../../../..${hostDir}/dotdot`, 'x'), file(`a/../../..${hostDir}/dotdot2`, 'x')])],
    'absolute-path': [buildTar([canary, file(`${hostDir}/absolute`, 'stays inside the root')])],
    'symlink-then-write, same layer (CVE-2014-9356 class)': [buildTar([canary, link('evil', hostDir), file('evil/pwned', 'x'), link('evil-rel', `../../../../../../../../..${hostDir}`), file('evil-rel/pwned-rel', 'x')])],
    'symlink-then-write, later layer': [buildTar([canary, link('evil', hostDir), link('evil-rel', `../../../../../../..${hostDir}`)]), buildTar([file('evil/pwned', 'x'), file('evil-rel/pwned-rel', 'x'), dir('evil/newdir'), link('evil/newlink', '/etc')])],
    'symlink-loop': [buildTar([canary, link('loop1', 'loop2'), link('loop2', 'loop1'), file('loop1/x', 'x')])],
    'hardlink-outside (CVE-2014-6407 class)': [buildTar([canary, hard('hl-dotdot', `../../../../../../..${hostDir}/secret`), hard('hl-abs', `${hostDir}/secret`), link('via', hostDir), hard('hl-through-symlink', 'via/secret')])],
    'overwrite-through-final-symlink (CVE-2021-32760 class)': [
      buildTar([canary, link('target', `${hostDir}/secret`), link('target-dir', hostDir)]),
      buildTar([file('target', 'replaces the link, never writes through it', { mode: 0o777 }), dir('target-dir', { mode: 0o777 })]),
    ],
    'whiteout-escape': [
      buildTar([canary, link('wdir', hostDir)]),
      buildTar([file('.wh..', ''), file('.wh.', ''), file(`../../../../../..${hostDir}/.wh.secret`, ''), file('wdir/.wh.secret', ''), file('wdir/.wh..wh..opq', ''), file('sub/../../../.wh.secret', '')]),
    ],
    'device-through-symlink': [buildTar([canary, link('devdir', hostDir), { path: 'devdir/mem', type: 'char', devmajor: 1, devminor: 1, mode: 0o666 }])],
  };
}

/** Entries for an eStargz layer: every type, xattrs, a hardlink, and files big enough to be chunked. */
export function estargzEntries(): WriteEntry[] {
  return [
    dir('bin'),
    file('bin/busybox', busyboxBinary(), { mode: 0o755 }),
    link('bin/sh', 'busybox'),
    dir('etc'),
    file('etc/motd', 'hello from an eStargz layer\n'),
    file('etc/shadow', 'root:*::::::\n', { mode: 0o640, gid: 42 }),
    hard('etc/motd-link', 'etc/motd'),
    file('etc/xattr', 'x', { xattrs: { 'user.krgo': 'stargz' } }),
    file('empty', ''),
    { path: 'fifo', type: 'fifo', mode: 0o600, mtime: T },
    file('.wh.nothing-below', ''),
  ];
}
