import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OciLayoutWriter } from './oci-layout.js';
import { run, runOk } from './run.js';

/** Bump when the recipe changes, so cached layouts are rebuilt. */
const RECIPE = 'debian-bookworm-3layer-v2';
export const DEBIAN_TAG = 'debian';

export function fixtureCacheDir(): string {
  return process.env['KRGO_FIXTURE_CACHE'] ?? join(homedir(), '.cache', 'krgo-fixtures');
}

/** Layer 2 installs these with every dependency the base does not have (as apt-get install would, without recommends). */
const LAYER2_PACKAGES = ['python3', 'curl'];

async function aptClosure(packages: string[]): Promise<string[]> {
  const args = ['depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', ...packages];
  let res = await run('apt-cache', args);
  if (res.code !== 0 || !res.stdout.includes(packages[0]!)) {
    await runOk('apt-get', ['update', '-qq']);
    res = await runOk('apt-cache', args);
  }
  // Top-level lines are package names; indented lines are the relations, <name> a virtual package.
  return [...new Set(res.stdout.split('\n').filter((l) => /^[a-z0-9]/.test(l)).map((l) => l.trim()))];
}

async function installedIn(root: string): Promise<Set<string>> {
  const res = await runOk('dpkg-query', [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f', '${Package}\n']);
  return new Set(res.stdout.split('\n').filter(Boolean));
}

async function tarDir(dir: string, out: string): Promise<Buffer> {
  await runOk('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--sort=name', '-cf', out, '-C', dir, '.']);
  return readFile(out);
}

/** Debian ships some files under /lib or /bin still; on a merged-/usr base those live in /usr. */
async function mergeUsr(dir: string): Promise<void> {
  for (const top of ['bin', 'sbin', 'lib', 'lib64']) {
    const from = join(dir, top);
    if (!existsSync(from)) continue;
    await mkdir(join(dir, 'usr', top), { recursive: true });
    await runOk('cp', ['-a', `${from}/.`, join(dir, 'usr', top)]);
    await rm(from, { recursive: true, force: true });
  }
}

/** Packages of the larger bench image's fourth layer: a C and C++ toolchain. */
const TOOLCHAIN_PACKAGES = ['gcc', 'g++', 'make'];

/** Unpacks the .debs of `wanted` and of their dependencies not in `installed` into a layer tar. */
async function packagesLayer(work: string, name: string, wanted: string[], installed: Set<string>, log: (line: string) => void): Promise<Buffer> {
  const packages = (await aptClosure(wanted)).filter((p) => !installed.has(p));
  log(`downloading ${packages.length} packages for ${wanted.join(', ')}`);
  const debs = join(work, `${name}-debs`);
  await mkdir(debs);
  await runOk('apt-get', ['download', ...packages], { cwd: debs });
  const tree = join(work, name);
  await mkdir(tree);
  for (const deb of await readdir(debs)) await runOk('dpkg-deb', ['-x', join(debs, deb), tree]);
  await mergeUsr(tree);
  for (const p of packages) installed.add(p);
  return tarDir(tree, join(work, `${name}.tar`));
}

/**
 * A real three-layer Debian bookworm image, built from Debian's packages and cached:
 * 1. `debootstrap --variant=minbase`; 2. python3 and curl with their dependencies, from their .debs
 * (unpacked, no maintainer scripts); 3. deletions
 * (a whiteout, an opaque directory) and a small addition. Returns an OCI layout holding tag `debian`.
 */
export function debianImageLayout(log: (line: string) => void = () => undefined): Promise<string> {
  return buildDebianLayout(RECIPE, false, log);
}

/** The bench's larger image: the same three layers and a fourth with gcc, g++ and make (and their dependencies). */
export function largeDebianImageLayout(log: (line: string) => void = () => undefined): Promise<string> {
  return buildDebianLayout(`${RECIPE}-toolchain`, true, log);
}

async function buildDebianLayout(recipe: string, toolchain: boolean, log: (line: string) => void): Promise<string> {
  const layout = join(fixtureCacheDir(), recipe);
  if (existsSync(join(layout, 'index.json'))) return layout;
  const work = `${layout}.building`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const base = join(work, 'base');
  log('debootstrap --variant=minbase bookworm (about a minute)');
  await runOk('debootstrap', ['--variant=minbase', 'bookworm', base], { timeoutMs: 900_000 });
  await rm(join(base, 'var/cache/apt/archives'), { recursive: true, force: true });
  await mkdir(join(base, 'var/cache/apt/archives/partial'), { recursive: true });
  const layer1 = await tarDir(base, join(work, 'layer1.tar'));

  const installed = await installedIn(base);
  const layer2 = await packagesLayer(work, 'python', LAYER2_PACKAGES, installed, log);

  const changes = join(work, 'changes');
  await mkdir(join(changes, 'usr/share/doc'), { recursive: true });
  await mkdir(join(changes, 'etc'), { recursive: true });
  await writeFile(join(changes, 'usr/share/doc/.wh..wh..opq'), '');
  await writeFile(join(changes, 'usr/share/.wh.man'), '');
  await writeFile(join(changes, 'etc/.wh.motd'), '');
  await writeFile(join(changes, 'etc/krgo-release'), 'built by krgo tests\n');
  const layer3 = await tarDir(changes, join(work, 'layer3.tar'));

  log('writing the OCI layout');
  const out = new OciLayoutWriter(join(work, 'layout'));
  const layers = [{ tar: layer1 }, { tar: layer2 }, { tar: layer3 }];
  if (toolchain) layers.push({ tar: await packagesLayer(work, 'toolchain', TOOLCHAIN_PACKAGES, installed, log) });
  await out.addImage(DEBIAN_TAG, { layers, config: { config: { Cmd: ['/usr/bin/python3'] } } });
  await out.finish();
  await rm(layout, { recursive: true, force: true });
  await rename(join(work, 'layout'), layout);
  await rm(work, { recursive: true, force: true });
  return layout;
}
