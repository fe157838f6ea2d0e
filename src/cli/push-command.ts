import type { Command } from 'commander';
import { formatBytes } from '../util/format.js';
import type { ImageFlags } from './image-options.js';
import { imageSource, withImageOptions } from './image-options.js';

export function registerPush(program: Command): void {
  withImageOptions(
    program
      .command('push')
      .description('push a rootfs pulled with -g (and its committed layers) to a registry')
      .argument('<image>', 'where to push: host:port/name:tag (a tag, not a digest)')
      .option('-r, --rootfs <dir>', 'the rootfs written by `krgo pull -g` or `krgo materialize -g` (default: the image name)'),
  )
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print one JSON object per line (layer, upload, layer-done, warning, done with the pushed manifest digest) instead of progress; errors stay on stderr')
    .option('-j, --jobs <n>', 'layers sent at once', '3')
    .addHelpText(
      'after',
      `
Layers the target already has are not sent (HEAD check). Layers of the pulled image are mounted
from the source repository when it is on the same registry, otherwise copied from the source
registry (verified on the way); layers made by \`krgo commit\` are uploaded from
.ROOTFS.krgo/blobs (in chunks above 16 MiB, honouring the registry's OCI-Chunk-Min-Length).
Then the config and the manifest, in the source image's format (Docker v2s2 or OCI).
-u gives the target's credentials; the source uses ~/.docker/config.json or anonymous access.`,
    )
    .action(async (image: string, flags: ImageFlags & { rootfs?: string; quiet?: boolean; json?: boolean; jobs: string }) => {
      const [{ pushImage }, { pushProgress }, { jsonPushEvents }] = await Promise.all([import('../push/push-image.js'), import('./push-progress.js'), import('./json-events.js')]);
      const say = (line: string) => {
        if (!flags.quiet) process.stdout.write(`${line}\n`);
      };
      const json = flags.json ? jsonPushEvents(process.stdout) : undefined;
      const progress = json ? { ...json, finish: () => undefined } : pushProgress(process.stdout, flags.quiet ? 'quiet' : process.stdout.isTTY ? 'tty' : 'plain');
      const jobs = Number(flags.jobs);
      const result = await pushImage({
        ...imageSource(image, flags),
        ...(flags.rootfs ? { rootfs: flags.rootfs } : {}),
        concurrency: Number.isInteger(jobs) && jobs > 0 ? jobs : 3,
        events: progress,
      });
      progress.finish();
      if (json) return json.done(result);
      say(`${result.reference}: pushed, manifest ${result.manifestDigest} (${formatBytes(result.bytesSent)} of layers sent)`);
    });
}
