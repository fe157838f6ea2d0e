import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isPerlProgram, perlCommandIn, perlCommandModules, perlModules } from '../../../src/vfs/perl-modules.js';
import { PerlPrefetcher } from '../../../src/vfs/perl-prefetch.js';
import { MergedTree, type Inode } from '../../../src/vfs/merged-tree.js';
import { buildTar } from '../../../src/tar/tar-writer.js';
import { indexedTree } from '../../support/indexed-tree.js';

const BASE = '/usr/lib/x86_64-linux-gnu/perl-base';
const SHARE = '/usr/share/perl5';

/** A tree with two @INC directories (the first one wins), indexed so files carry their hints. */
async function perlTree(): Promise<{ tree: MergedTree; pathOf: Map<number, string>; hints: Map<string, string[] | undefined> }> {
  const dir = (path: string) => ({ path: `.${path}/`, type: 'dir' as const });
  const file = (path: string, text: string) => ({ path: `.${path}`, type: 'file' as const, content: Buffer.from(text) });
  const tar = buildTar([
    ...['/usr', '/usr/bin', '/usr/lib', '/usr/lib/x86_64-linux-gnu', BASE, `${BASE}/File`, `${BASE}/auto`, `${BASE}/auto/POSIX`, '/usr/share', SHARE, '/srv'].map(dir),
    file('/usr/bin/perl', '\x7fELF not really'),
    file(`${BASE}/POSIX.pm`, 'package POSIX;\nuse strict;\nuse warnings;\nrequire Exporter;\nsub f {\n  use Fcntl ();\n}\nXSLoader::load();\n1;\n__END__\nuse NotCode;\n'),
    file(`${BASE}/strict.pm`, 'package strict;\n=head1 NAME\n\nuse InPod;\n\n=cut\n1;\n'),
    file(`${BASE}/warnings.pm`, 'package warnings;\n1;\n'),
    file(`${BASE}/Exporter.pm`, 'package Exporter;\n1;\n'),
    file(`${BASE}/Fcntl.pm`, 'package Fcntl;\nuse parent -norequire, "Ignored";\n1;\n'),
    file(`${BASE}/auto/POSIX/POSIX.so`, '\x7fELF xs'),
    file(`${BASE}/File/Spec.pm`, "package File::Spec;\nuse base qw(File::Unix);\n1;\n"),
    file(`${SHARE}/File/Unix.pm`, 'package File::Unix;\n1;\n'),
    file(`${SHARE}/warnings.pm`, 'package warnings;\n1;\n'),
    file('/srv/tool', "#!/usr/bin/perl -w\nuse File::Spec;\nprint 1;\n"),
    file('/srv/tool.sh', '#!/bin/sh\nuse File::Spec\n'),
  ]);
  const { tree, pathOf, index } = await indexedTree(tar);
  const hints = new Map(index.entries.map((e) => [e.path.slice(1), e.deps]));
  return { tree, pathOf, hints };
}

describe('perl modules (what a Perl file or command line loads)', () => {
  it('reads use (anywhere), require of a bareword, use parent/base classes; not POD, not past __END__', () => {
    const source = 'use strict;\nuse 5.010;\nuse v5.36;\n  use Foo::Bar qw(x);\nrequire Baz;\nrequire "file.pl";\nno warnings;\nuse parent qw(A::B C);\nuse base "D";\n=pod\nuse Hidden;\n=cut\nsub x {\n  use Inner;\n}\n__DATA__\nuse Data;\n';
    assert.deepEqual(perlModules(source), ['strict', 'Foo::Bar', 'Baz', 'warnings', 'parent', 'A::B', 'C', 'base', 'D', 'Inner']);
  });

  it('reads what a perl command line loads: -M/-m (grouped too), -e code; not past the script', () => {
    assert.deepEqual(perlCommandModules(['perl', '-MPOSIX', '-M', 'Getopt::Long=GetOptions', '-mFile::Spec', '-we', 'use Cwd; print 1', 'script.pl', '-MNot']), ['POSIX', 'Getopt::Long', 'File::Spec', 'Cwd']);
    assert.deepEqual(perlCommandModules(['/usr/bin/perl5.36.0', '-I', '/opt/lib', '-M-warnings', 'x.pl']), ['warnings']);
    assert.deepEqual(perlCommandModules(['python3', '-MPOSIX']), []);
    assert.ok(isPerlProgram(['/usr/bin/perl']) && !isPerlProgram(['/usr/bin/perldoc']));
    assert.deepEqual(perlCommandIn(['chroot', '/mnt', 'perl', '-e', '1']), ['perl', '-e', '1']);
  });

  it('the index keeps the modules of .pm files and perl scripts as hints; other scripts get none', async () => {
    const { hints } = await perlTree();
    assert.deepEqual(hints.get(`${BASE}/POSIX.pm`), ['pm:strict', 'pm:warnings', 'pm:Exporter', 'pm:Fcntl']);
    assert.deepEqual(hints.get('/srv/tool'), ['pm:File::Spec']);
    assert.equal(hints.get('/srv/tool.sh'), undefined);
  });

  it('a first read of a module fetches all it loads at once, in @INC order, with its XS library', async () => {
    const { tree, pathOf } = await perlTree();
    const fetched: string[][] = [];
    const prefetcher = new PerlPrefetcher(tree, (inodes: Inode[]) => fetched.push(inodes.map((i) => pathOf.get(i.ino)!)));
    prefetcher.opened(tree.lookup(`${BASE}/POSIX.pm`)!, `${BASE}/POSIX.pm`);
    // /usr/share/perl5 comes before perl-base in Debian's @INC: its warnings.pm is the one perl loads.
    assert.deepEqual(fetched, [[`${BASE}/auto/POSIX/POSIX.so`, `${BASE}/strict.pm`, `${SHARE}/warnings.pm`, `${BASE}/Exporter.pm`, `${BASE}/Fcntl.pm`]], 'its own XS library first');
    prefetcher.opened(tree.lookup(`${BASE}/POSIX.pm`)!, `${BASE}/POSIX.pm`);
    assert.equal(fetched.length, 1, 'followed once');
    prefetcher.opened(tree.lookup('/srv/tool')!, '/srv/tool');
    assert.deepEqual(fetched[1], [`${BASE}/File/Spec.pm`, `${SHARE}/File/Unix.pm`]);
  });

  it('when perl is exec\'d, what its command line loads is fetched at once, XS libraries included', async () => {
    const { tree, pathOf } = await perlTree();
    const fetched: string[] = [];
    const processes = { commandLines: async () => [{ pid: 7, argv: ['chroot', '/mnt', '/usr/bin/perl', '-MPOSIX', '-e', 'print 1'] }], commandLineOf: async () => undefined };
    const prefetcher = new PerlPrefetcher(tree, (inodes: Inode[]) => fetched.push(...inodes.map((i) => pathOf.get(i.ino)!)), processes);
    prefetcher.opened(tree.lookup('/usr/bin/perl')!, '/usr/bin/perl');
    for (let i = 0; i < 50 && fetched.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(fetched.sort(), [`${BASE}/Exporter.pm`, `${BASE}/Fcntl.pm`, `${BASE}/POSIX.pm`, `${BASE}/auto/POSIX/POSIX.so`, `${BASE}/strict.pm`, `${SHARE}/warnings.pm`]);
  });
});
