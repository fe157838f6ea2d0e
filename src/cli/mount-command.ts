import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { dirname, resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { requireFuseAccess } from '../util/privileges.js';
import { mountLogPath, readStatus } from '../mount/mount-status.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { imageSource, withImageOptions, type ImageFlags } from './image-options.js';
import { readProfile } from './profile-file.js';
import { indexingLine } from './progress.js';
import { tracePhase } from '../util/phase-trace.js';
import { preconnectImage } from '../registry/preconnect.js';
import { holdOptimizingCompiler } from '../util/optimizing-compiler.js';

interface MountFlags extends ImageFlags {
  daemon?: boolean;
  quiet?: boolean;
  prefetchCommand?: boolean;
  profile?: string;
  prefetch?: boolean;
  recordProfile?: string;
  writable?: boolean;
  upper?: string;
  json?: boolean;
}

/**
 * How long after ready V8's optimizing compiler stays off (util/optimizing-compiler.ts): past the
 * start's burst (the tree, an access profile's replay, the first program's start; the bench's six
 * workloads are done within 2.1 s of ready), and no longer: held, JavaScript runs unoptimized (a
 * second `find -ls` of /usr, /etc and /var in a mount: 0.54–0.68 s held, 0.47–0.50 s not).
 */
const OPTIMIZE_AFTER_READY_MS = 3000;

/** Set in the environment of the background process of `mount -d`, so it mounts instead of forking again. */
const DAEMON_CHILD_ENV = 'KRGO_MOUNT_DAEMON_CHILD';

/**
 * -d: the same command in a detached child; this process shows the child's progress and returns
 * once the mount is ready, or ends as the child did (its message, its exit code). Ctrl-C here
 * stops the child, so nothing is mounted after this returns.
 */
async function daemonize(argv: string[], cacheDir: string, mountpoint: string, quiet: boolean, json: boolean): Promise<void> {
  const logPath = mountLogPath(cacheDir, mountpoint);
  await mkdir(dirname(logPath), { recursive: true });
  const log = await open(logPath, 'w');
  // With the node flags this process was started with (a user's --max-old-space-size, say).
  const child = spawn(process.execPath, [...process.execArgv, ...argv], { detached: true, stdio: ['ignore', log.fd, log.fd], env: { ...process.env, [DAEMON_CHILD_ENV]: '1' } });
  child.unref();
  await log.close();
  const exited = new Promise<number>((done) => child.once('exit', (code, signal) => done(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1))));
  let cancelled = false;
  const cancel = () => {
    cancelled = true;
    child.kill('SIGTERM');
  };
  process.once('SIGINT', cancel);
  process.once('SIGTERM', cancel);
  /** The child's own word on the cancel this process asked for: said once, by this process. */
  const echoesCancel = (line: string) => cancelled && line.startsWith('krgo: interrupted: ');
  const follower = new LogFollower(logPath);
  try {
    for (;;) {
      const lines = await follower.newLines();
      for (const line of lines) {
        if (line.startsWith('ready: ') || line.startsWith('{"event":"ready"')) continue;
        if (echoesCancel(line)) continue;
        if (line.startsWith('warning: ') || line.startsWith('krgo: ')) process.stderr.write(`${line}\n`);
        else if (!quiet || json) process.stdout.write(`${line}\n`);
      }
      const status = await readStatus(cacheDir, mountpoint);
      if (!cancelled && status && status.pid === child.pid && status.readyAt) {
        if (json) {
          const { jsonMountEvents } = await import('./json-events.js');
          jsonMountEvents(process.stdout).ready(status, logPath);
        } else process.stdout.write(`ready: ${status.reference} mounted on ${status.mountpoint} (pid ${status.pid}, log ${logPath})\n`);
        return;
      }
      // Short: the time from the child's ready to this command's return is part of what a user waits.
      const code = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 20))]);
      if (code === undefined) continue;
      for (const line of await follower.newLines()) if (!echoesCancel(line)) process.stderr.write(`${line}\n`);
      if (cancelled) throw new KrgoError('INTERRUPTED', `interrupted: the mount of ${resolve(mountpoint)} was cancelled; run the same command again to mount it`);
      // The child said what went wrong (its last lines are above); its exit code is ours.
      await rm(logPath, { force: true });
      process.exitCode = code === 0 ? 1 : code;
      return;
    }
  } finally {
    process.removeListener('SIGINT', cancel);
    process.removeListener('SIGTERM', cancel);
  }
}

/** New whole lines of a file another process appends to. */
class LogFollower {
  private offset = 0;
  private partial = '';
  constructor(private readonly path: string) {}

  async newLines(): Promise<string[]> {
    const data = await readFile(this.path).catch(() => Buffer.alloc(0));
    if (data.length <= this.offset) return [];
    const text = this.partial + data.subarray(this.offset).toString('utf8');
    this.offset = data.length;
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    return lines;
  }
}

export function registerMount(program: Command): void {
  withImageOptions(
    program
      .command('mount')
      .description('mount an image lazily: files are fetched from the registry when first read')
      .argument('[image]', 'image reference (with no arguments: list the mounts, as krgo mounts)')
      .argument('[mountpoint]', 'an empty directory'),
  )
    .option('-d, --daemon', 'return once mounted, leaving the mount to a background process')
    .option('-w, --writable', 'writable: kernel overlayfs over the lazy tree; changes go to an upper directory that outlives the mount')
    .option('--upper <dir>', 'with -w: keep the changes in DIR (default: under the cache dir, per mountpoint)')
    .option('-q, --quiet', 'print only the ready line and errors')
    .option('--json', 'print one JSON object per line (indexed per layer, warning, ready with the mountpoint and manifest digest, unmounted) instead of text; errors stay on stderr')
    .option('--prefetch-command', "right after mounting, fetch the image's command (Entrypoint or Cmd) and its libraries")
    .option('--profile <file>', 'replay this access profile (from --record-profile, or a list of paths) right after mounting, instead of the one pushed with the indexes')
    .option('--no-prefetch', 'fetch nothing ahead from an access profile, even one pushed with the indexes')
    .option('--record-profile <file>', 'write what this mount reads (files and parts, in first-read order) to FILE when it stops, for `krgo index --push --profile`')
    .addHelpText(
      'after',
      `
The first mount of an image reads each layer once to index it (tar offsets, gzip seek points);
the indexes stay in the cache, so later mounts start at once. Reads then fetch only the spans
of the layers they need, with HTTP Range requests. The tree is read-only and equals what
\`krgo pull\` writes. Running an executable also fetches, in parallel, the libraries its loader
will ask for. Stop with Ctrl-C, SIGTERM or \`krgo umount MOUNTPOINT\`.

An access profile lists what a workload reads first. Record one with --record-profile while
running the workload, store it with \`krgo index --push --profile FILE\`, and every later mount
of the image fetches all of it at once, in parallel, as soon as it is mounted (--no-prefetch
turns that off; \`krgo status\` shows it).

With -w the mount is writable: an overlayfs whose lower layer is the lazy tree and whose upper
directory keeps every change (under the cache dir per mountpoint, or --upper DIR). Unmounting, or
a killed mount process, loses nothing: mount the same image on the same mountpoint (or with the
same --upper) and the changes are back. A container engine can run read-write in it.

Examples:
  krgo mount -d debian /mnt/debian && krgo run /mnt/debian -- /bin/bash
  krgo mount -d -w debian /mnt/debian && systemd-nspawn -D /mnt/debian apt-get install -y vim
  krgo mount -d localhost:5000/app:1.2 /mnt/app; krgo status /mnt/app; krgo umount /mnt/app
  krgo mount -d --record-profile app.profile app:1.2 /mnt/app; chroot /mnt/app /app/start --selftest
  krgo umount /mnt/app; krgo index --push --profile app.profile app:1.2`,
    )
    .action(async (image: string | undefined, mountpoint: string | undefined, flags: MountFlags) => {
      if (image === undefined) {
        const { printMounts } = await import('./mounts-command.js');
        return printMounts(false);
      }
      if (mountpoint === undefined) throw new KrgoError('USAGE', 'krgo mount needs IMAGE and MOUNTPOINT (or nothing, to list the mounts)');
      requireFuseAccess();
      if (flags.upper && !flags.writable) throw new KrgoError('USAGE', '--upper goes with -w (--writable)');
      const source = imageSource(image, flags);
      // Read before anything else, so a bad file is reported here, not in a daemon's log.
      const profile = flags.profile ? await readProfile(flags.profile) : undefined;
      if (flags.daemon && !process.env[DAEMON_CHILD_ENV]) return daemonize(process.argv.slice(1), source.cacheDir, mountpoint, flags.quiet === true, flags.json === true);
      const json = flags.json ? (await import('./json-events.js')).jsonMountEvents(process.stdout) : undefined;
      const say = (line: string) => {
        if (!flags.quiet && !json) process.stdout.write(`${line}\n`);
      };
      // Listened to from the start: a signal before ready cancels the mount (nothing is left
      // mounted), one after it unmounts; neither may kill the process with a mount up.
      const cancel = new AbortController();
      let stopMounted: ((why: string) => void) | undefined;
      const onSignal = (signal: NodeJS.Signals) => () => (stopMounted ? stopMounted(signal) : cancel.abort(signal));
      process.once('SIGINT', onSignal('SIGINT'));
      process.once('SIGTERM', onSignal('SIGTERM'));
      tracePhase('mount command');
      const releaseCompiler = holdOptimizingCompiler();
      // The manifest and the index list go out together as soon as the code that asks is
      // loaded: their connections are opened while it loads (a round trip off ready).
      void preconnectImage(source.image, source.insecure === true, 2);
      const { mountImage } = await import('../mount/mount-image.js');
      let lost: () => void = () => undefined;
      const handle = await mountImage({
        signal: cancel.signal,
        ...source,
        mountpoint,
        ...(flags.prefetchCommand ? { prefetchCommand: true } : {}),
        ...(profile ? { profile } : {}),
        ...(flags.prefetch === false ? { prefetch: false } : {}),
        ...(flags.recordProfile ? { recordProfile: resolve(flags.recordProfile) } : {}),
        ...(flags.writable ? { writable: flags.upper ? { upper: flags.upper } : {} } : {}),
        onLost: () => lost(),
        events: {
          warn: (message) => (json ? json.warning(message) : process.stderr.write(`warning: ${message}\n`)),
          layerIndexing: (layer, digest, size) => {
            json?.indexing(layer, digest, size);
            say(indexingLine(layer, digest, size));
          },
          layerIndexed: (layer, from, index) => {
            json?.indexed(layer, index.layerDigest, from, index.entries.length);
            say(`layer ${layer + 1} ${index.layerDigest.slice(7, 19)}: index ${from === 'built' ? 'built' : `from the ${from}`} (${index.entries.length} entries, ${index.checkpoints.length} seek points, ${index.format})`);
          },
        },
      });
      const status = handle.status();
      tracePhase('ready');
      setTimeout(releaseCompiler, OPTIMIZE_AFTER_READY_MS).unref();
      if (json) json.ready(status);
      else process.stdout.write(`ready: ${status.reference} mounted on ${status.mountpoint} in ${formatDuration(status.readyMs ?? 0)}\n`);
      await new Promise<void>((done) => {
        const stop = (why: string) => {
          say(`${why}: unmounting ${status.mountpoint}`);
          handle.stop().then(done, (err: unknown) => {
            process.stderr.write(`krgo: unmount failed: ${(err as Error).message}\n`);
            done();
          });
        };
        stopMounted = stop;
        lost = () => stop('unmounted from outside');
        // A signal while the mount came up after its last cancellation point.
        if (cancel.signal.aborted) stop(String(cancel.signal.reason));
      });
      const fetched = handle.status().layers.reduce((a, l) => a + l.fetched, 0);
      json?.unmounted(fetched, handle.status().requests);
      say(`unmounted; fetched ${formatBytes(fetched)} in ${handle.status().requests} requests`);
      if (flags.recordProfile) {
        const recorded = await readProfile(flags.recordProfile).catch(() => undefined);
        if (recorded) say(`access profile of ${recorded.files.length} files written to ${flags.recordProfile}; store it with: krgo index --push --profile ${flags.recordProfile} ${image}`);
      }
    });
}
