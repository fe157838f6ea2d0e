import type { Command } from 'commander';
import { pullImage } from '../pull/pull-image.js';
import { parsePlatform } from '../image/platform.js';
import { parseUserPass } from '../registry/credentials.js';
import { defaultCacheDir } from '../util/paths.js';
import { progressReporter } from './progress.js';

interface PullFlags {
  rootfs?: string;
  user?: string;
  platform?: string;
  insecure?: boolean;
  quiet?: boolean;
  cacheDir?: string;
  jobs: string;
  keepBlobs?: boolean;
}

export function registerPull(program: Command): void {
  program
    .command('pull')
    .description('download an image and write its root filesystem to a directory')
    .argument('<image>', 'image reference: debian, user/img:tag, host:port/path/img@sha256:...')
    .option('-r, --rootfs <dir>', 'directory to write the rootfs to (default: the image name); must not exist or be empty')
    .option('-u, --user <user:password>', 'registry credentials (else ~/.docker/config.json, else anonymous)')
    .option('--platform <os/arch[/variant]>', 'platform to choose from a multi-platform image (default: linux and this machine\'s architecture)')
    .option('--insecure', 'allow plain HTTP to registries that are not on loopback')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--cache-dir <dir>', 'where downloads are kept while in progress (default: $XDG_CACHE_HOME/krgo)')
    .option('-j, --jobs <n>', 'layers downloaded at once', '3')
    .option('--keep-blobs', 'keep the compressed layers in the cache after the pull')
    .addHelpText(
      'after',
      `
The rootfs holds exactly the image's files. The manifest and config are written beside it, in
.ROOTFS.krgo/ (image.json there marks a complete pull). An interrupted pull leaves no ROOTFS;
run the same command again and the downloads resume where they stopped.

Examples:
  krgo pull debian                        # docker.io/library/debian:latest into ./debian
  krgo pull localhost:5000/app:1.2 -r /srv/app
  krgo pull alpine --platform linux/arm64/v8 -r alpine-arm64`,
    )
    .action(async (image: string, flags: PullFlags) => {
      const mode = flags.quiet ? 'quiet' : process.stdout.isTTY ? 'tty' : 'plain';
      const progress = progressReporter(process.stdout, mode);
      const jobs = Number(flags.jobs);
      const result = await pullImage({
        image,
        ...(flags.rootfs ? { rootfs: flags.rootfs } : {}),
        ...(flags.user ? { credentials: parseUserPass(flags.user) } : {}),
        ...(flags.platform ? { platform: parsePlatform(flags.platform) } : {}),
        ...(flags.insecure ? { insecure: true } : {}),
        ...(flags.keepBlobs ? { keepBlobs: true } : {}),
        cacheDir: flags.cacheDir ?? defaultCacheDir(),
        concurrency: Number.isInteger(jobs) && jobs > 0 ? jobs : 3,
        events: progress,
      });
      progress.finish();
      if (!flags.quiet) {
        process.stdout.write(`${result.rootfs}: ${result.entries} entries from ${result.layers} layers${result.skipped ? `, ${result.skipped} unsafe or invalid entries skipped` : ''}\n`);
      }
    });
}
