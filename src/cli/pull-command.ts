import type { Command } from 'commander';
import { KrgoError } from '../errors.js';
import { gitDirFor, rootfsOf } from '../hostfs/rootfs-paths.js';
import { requireRoot } from '../util/privileges.js';
import { imageSource, withImageOptions, type ImageFlags } from './image-options.js';

interface PullFlags extends ImageFlags {
  rootfs?: string;
  quiet?: boolean;
  json?: boolean;
  jobs: string;
  keepBlobs?: boolean;
  git?: boolean;
}

export function registerPull(program: Command): void {
  withImageOptions(
    program
      .command('pull')
      .description('download an image and write its root filesystem to a directory')
      .argument('<image>', 'image reference: debian, user/img:tag, host:port/path/img@sha256:...')
      .option('-r, --rootfs <dir>', 'directory to write the rootfs to (default: the image name); must not exist or be empty'),
  )
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print one JSON object per line (resolved, download, downloaded, apply, applied, warning, done with the manifest digest) instead of progress; errors stay on stderr')
    .option('-j, --jobs <n>', 'layers downloaded at once', '3')
    .option('--keep-blobs', 'keep the compressed layers in the cache after the pull')
    .option('-g, --git', 'also make ROOTFS a git work tree with one branch per layer (for krgo commit and push)')
    .addHelpText(
      'after',
      `
The rootfs holds exactly the image's files. The manifest and config are written beside it, in
.ROOTFS.krgo/ (image.json there marks a complete pull).

With -g, .ROOTFS.krgo/git is a git repository whose work tree is ROOTFS: branch
layer_<n>_<digest> holds the tree after layer n (n from 0), each made from the one before, the
last checked out. Owners, modes, empty directories, devices, hardlinks and xattrs, which git
does not keep, are recorded per branch in the ref refs/krgo/state, with the manifest and config.
Use git on it with: git --git-dir .ROOTFS.krgo/git log --all. An interrupted pull leaves no ROOTFS;
run the same command again and the downloads resume where they stopped.

Examples:
  krgo pull debian                        # docker.io/library/debian:latest into ./debian
  krgo pull localhost:5000/app:1.2 -r /srv/app
  krgo pull alpine --platform linux/arm64/v8 -r alpine-arm64
  krgo pull debian -g && echo hi > debian/hi && krgo commit -r debian -m hi`,
    )
    .action(async (image: string, flags: PullFlags) => {
      requireRoot('krgo pull');
      const [{ pullImage }, { progressReporter }, { jsonPullEvents }] = await Promise.all([import('../pull/pull-image.js'), import('./progress.js'), import('./json-events.js')]);
      const mode = flags.quiet ? 'quiet' : process.stdout.isTTY ? 'tty' : 'plain';
      const json = flags.json ? jsonPullEvents(process.stdout) : undefined;
      const gitDir = flags.git ? gitDirFor(rootfsOf(image, flags.rootfs)) : undefined;
      const progress = json ? { ...json, finish: () => undefined } : progressReporter(process.stdout, mode, gitDir ? { gitDir } : {});
      const jobs = Number(flags.jobs);
      if (!/^\d+$/.test(flags.jobs) || jobs < 1 || jobs > 64) throw new KrgoError('USAGE', `-j takes a whole number from 1 to 64, not ${JSON.stringify(flags.jobs)}`);
      // Ctrl-C: what is downloaded stays in the cache (partial blobs too), and the next run says so by resuming.
      process.once('SIGINT', () => {
        if (mode === 'tty' && !json) process.stdout.write('\n');
        process.stderr.write('krgo: interrupted; run the same command again: downloaded layers are kept and the others resume where they stopped\n');
        process.exit(130);
      });
      const result = await pullImage({
        ...imageSource(image, flags),
        ...(flags.rootfs ? { rootfs: flags.rootfs } : {}),
        ...(flags.keepBlobs ? { keepBlobs: true } : {}),
        ...(flags.git ? { git: true } : {}),
        concurrency: jobs,
        events: progress,
      });
      progress.finish();
      if (json) json.done(result);
      else if (!flags.quiet) {
        process.stdout.write(`${result.rootfs}: ${result.entries} entries from ${result.layers} layers${result.skipped ? `, ${result.skipped} unsafe or invalid entries skipped` : ''}\n`);
      }
    });
}
