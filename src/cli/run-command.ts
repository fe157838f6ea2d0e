import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { requireRoot } from '../util/privileges.js';
import { imageOfRoot } from './root-image.js';

/** The PATH a command gets when the image sets none, and the one the setup shell runs with on the host. */
const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const isDir = (path: string) => lstatSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
const isFile = (path: string) => lstatSync(path, { throwIfNoEntry: false })?.isFile() === true;

/**
 * The shell run in a private mount namespace (so every mount below vanishes with it, as with
 * arch-chroot): the host's /dev, /proc (a new one), /sys and resolv.conf on the image's own
 * directories, then the command with the image as root and its working directory.
 */
function setupScript(root: string, warn: (m: string) => void): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = ['set -e', 'mount --make-rprivate /'];
  const binds: [string, string][] = [['/dev', 'mount --rbind /dev'], ['/sys', 'mount --rbind /sys']];
  for (const [dir, cmd] of binds) {
    if (isDir(root + dir)) lines.push(`${cmd} ${q(root + dir)}`);
    else warn(`the image has no ${dir} directory: it runs without ${dir}`);
  }
  if (isDir(`${root}/proc`)) lines.push(`mount -t proc proc ${q(`${root}/proc`)}`);
  else warn('the image has no /proc directory: it runs without /proc');
  // Name resolution as on the host, when the image has a resolv.conf file to cover.
  if (isFile(`${root}/etc/resolv.conf`) && existsSync('/etc/resolv.conf')) lines.push(`mount --bind /etc/resolv.conf ${q(`${root}/etc/resolv.conf`)}`);
  // The command gets the image's PATH; unshare itself is the host's, named by its full path.
  lines.push('PATH="$KRGO_IMAGE_PATH" exec "$KRGO_UNSHARE" --root="$KRGO_ROOT" --wd="$KRGO_WD" -- "$@"');
  return lines.join('\n');
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description("run a command in a krgo mount or a pulled rootfs, as arch-chroot does: /dev, /proc, /sys and resolv.conf set up, the image's Env and WorkingDir")
    .argument('<root>', 'a krgo mount (krgo mount -d IMAGE DIR) or a rootfs written by krgo pull')
    .argument('[command...]', "the command and its arguments (default: the image's Entrypoint and Cmd)")
    .option('-w, --workdir <dir>', "working directory inside the image (default: the image's WorkingDir, else /)")
    .option('-e, --env <NAME=VALUE...>', "more environment (the image's Env is the base)")
    .addHelpText(
      'after',
      `
Mounts for /dev, /proc, /sys and /etc/resolv.conf are made in a private mount namespace: they
go when the command ends, and nobody else sees them. The command runs as root.

Examples:
  krgo mount -d debian /mnt/debian && krgo run /mnt/debian -- perl -e 'print "hi\\n"'
  krgo pull alpine -r alpine && krgo run alpine            # the image's own command
  krgo run /mnt/debian -w /tmp -e LANG=C.UTF-8 -- bash -l`,
    )
    .action(async (rootArg: string, command: string[], flags: { workdir?: string; env?: string[] }) => {
      requireRoot('krgo run');
      const root = resolve(rootArg);
      if (!isDir(root)) throw new KrgoError('USAGE', `${root} is not a directory (give a krgo mount or a pulled rootfs)`);
      const config = (await imageOfRoot(root))?.image.config ?? {};
      const argv = command.length ? command : [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
      if (argv.length === 0) throw new KrgoError('USAGE', 'the image names no command (Entrypoint or Cmd): give one after --');
      if (config.User && !/^(0|root)(:(0|root))?$/.test(config.User)) process.stderr.write(`warning: the image asks for user ${config.User}; krgo run runs as root\n`);
      const env: Record<string, string> = { PATH: STANDARD_PATH, HOME: '/root', TERM: process.env['TERM'] ?? 'xterm' };
      for (const pair of [...(config.Env ?? []), ...(flags.env ?? [])]) {
        const eq = pair.indexOf('=');
        if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      const script = setupScript(root, (m) => process.stderr.write(`warning: ${m}\n`));
      const unshare = ['/usr/bin/unshare', '/bin/unshare'].find((p) => existsSync(p)) ?? 'unshare';
      const child = spawn(unshare, ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'krgo-run', ...argv], {
        stdio: 'inherit',
        // The setup shell runs on the host with the host's PATH; the command gets the image's.
        env: { ...env, KRGO_ROOT: root, KRGO_WD: flags.workdir ?? (config.WorkingDir || '/'), KRGO_IMAGE_PATH: env['PATH']!, KRGO_UNSHARE: unshare, PATH: STANDARD_PATH },
      });
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
      const code = await new Promise<number>((done) => child.once('exit', (c, s) => done(c ?? (s ? 128 + 15 : 1))));
      process.exitCode = code;
    });
}
