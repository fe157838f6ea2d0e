import type { Command } from 'commander';
import { constants, existsSync, lstatSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { runtimeSpec, type ImageUsers } from '../image/runtime-spec.js';
import { imageOfRoot } from './root-image.js';

/**
 * A file of the image, read only when it is a regular file under real directories: a crafted
 * image whose /etc/passwd links to a host file must not have that file read.
 */
async function imageFile(root: string, path: string): Promise<string | undefined> {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    if (!lstatSync(join(root, ...parts.slice(0, i)), { throwIfNoEntry: false })?.isDirectory()) return undefined;
  }
  try {
    const handle = await open(join(root, ...parts), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      if (!(await handle.stat()).isFile()) return undefined;
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

export function registerBundle(program: Command): void {
  program
    .command('bundle')
    .description('write an OCI runtime bundle for a krgo mount or a pulled rootfs: DIR/config.json from the image config, for runc or crun')
    .argument('<root>', 'a krgo mount (krgo mount -d IMAGE ROOT) or a rootfs written by krgo pull')
    .argument('<dir>', 'the bundle directory (made if missing): config.json goes there, its root.path names ROOT')
    .option('--force', 'replace a config.json already in DIR')
    .addHelpText(
      'after',
      `
The configuration follows the OCI image spec's conversion rules (conversion.md): the image's
Entrypoint and Cmd, Env, WorkingDir, and User (names looked up in the image's /etc/passwd and
/etc/group), its labels and os, architecture, created, stop signal and exposed ports as
annotations. The rest is what \`runc spec\` writes, with docker's default capabilities. A
read-only krgo mount gives a read-only root; a writable one (mount -w) or a pulled rootfs a
read-write root.

Examples:
  krgo mount -d debian /mnt/debian && krgo bundle /mnt/debian /run/bundles/debian
  runc run -b /run/bundles/debian debian1
  krgo pull alpine -r /srv/alpine && krgo bundle /srv/alpine /srv/alpine-bundle`,
    )
    .action(async (rootArg: string, dirArg: string, flags: { force?: boolean }) => {
      const root = resolve(rootArg);
      const dir = resolve(dirArg);
      if (!lstatSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new KrgoError('USAGE', `${root} is not a directory (give a krgo mount or a pulled rootfs)`);
      const found = await imageOfRoot(root);
      if (!found) throw new KrgoError('USAGE', `${root} is neither a krgo mount nor a rootfs written by krgo pull: no image config to make a bundle from`);
      const target = join(dir, 'config.json');
      if (existsSync(target) && !flags.force) throw new KrgoError('TARGET_EXISTS', `${target} exists (--force replaces it)`);
      const users: ImageUsers = {};
      const passwd = await imageFile(root, '/etc/passwd');
      const group = await imageFile(root, '/etc/group');
      if (passwd !== undefined) users.passwd = passwd;
      if (group !== undefined) users.group = group;
      const spec = runtimeSpec(found.image, { rootPath: root, readonly: found.readonly, users });
      const volumes = Object.keys(found.image.config?.Volumes ?? {});
      if (volumes.length) process.stderr.write(`warning: the image declares volumes (${volumes.join(', ')}); the bundle mounts nothing there\n`);
      await writeFileAtomically(target, `${JSON.stringify(spec, null, 2)}\n`);
      process.stdout.write(`${target}: ${found.readonly ? 'read-only' : 'read-write'} root ${root}; run it with: runc run -b ${dir} NAME\n`);
    });
}
