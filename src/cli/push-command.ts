import type { Command } from 'commander';
import { formatBytes } from '../util/format.js';
import type { ImageFlags } from './image-options.js';
import { imageSource, withImageOptions } from './image-options.js';
import { rootfsOf } from '../hostfs/rootfs-paths.js';

export function registerPush(program: Command): void {
  withImageOptions(
    program
      .command('push')
      .description('push the image a writable mount or a rootfs pulled with -g committed to a registry')
      .argument('<image>', 'where to push: host:port/name:tag (a tag, not a digest)')
      .option('-r, --rootfs <dir>', 'a writable mount with commits (krgo mount -w), or the rootfs written by `krgo pull -g` or `krgo materialize -g` (default: the image name)'),
  )
    .option('--upper <dir>', 'push what the writable mount made with --upper DIR committed (also once it is unmounted)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print one JSON object per line (layer, upload, layer-done, warning, done with the pushed manifest digest) instead of progress; errors stay on stderr')
    .option('-j, --jobs <n>', 'layers sent at once', '3')
    .addHelpText(
      'after',
      `
From a writable mount (-r MOUNTPOINT): the image its commits made; the base's layers are mounted
from the source repository (same registry) or streamed from the source registry, never stored
here; the committed layers are uploaded. With the image, its layer indexes go as an artifact
(base indexes reused, the new layers' from commit), so a mount elsewhere is lazy at once.

Layers the target already has are not sent (HEAD check). Layers of the pulled image are mounted
from the source repository when it is on the same registry, otherwise copied from the source
registry (verified on the way); layers made by \`krgo commit\` are uploaded from
.ROOTFS.krgo/blobs (in chunks above 16 MiB, honouring the registry's OCI-Chunk-Min-Length).
Then the config and the manifest, in the source image's format (Docker v2s2 or OCI).
-u gives the target's credentials; the source uses ~/.docker/config.json or anonymous access.`,
    )
    .action(async (image: string, flags: ImageFlags & { rootfs?: string; quiet?: boolean; json?: boolean; jobs: string; upper?: string }) => {
      const [{ pushImage }, { pushProgress }, { jsonPushEvents }] = await Promise.all([import('../push/push-image.js'), import('./push-progress.js'), import('./json-events.js')]);
      const say = (line: string) => {
        if (!flags.quiet) process.stdout.write(`${line}\n`);
      };
      const json = flags.json ? jsonPushEvents(process.stdout) : undefined;
      const progress = json ? { ...json, finish: () => undefined } : pushProgress(process.stdout, flags.quiet ? 'quiet' : process.stdout.isTTY ? 'tty' : 'plain');
      const jobs = Number(flags.jobs);
      const source = imageSource(image, flags);
      const { findWritable } = await import('../commit/find-writable.js');
      const writable = flags.rootfs || flags.upper ? await findWritable(flags.rootfs ?? '.', flags.cacheDir, source.cacheDir, flags.upper) : undefined;
      const pushable = writable
        ? await (await import('../commit/pushable-writable.js')).pushableWritable(writable)
        : await (await import('../git/pushable-repo.js')).pushableRepo(rootfsOf(image, flags.rootfs), source.cacheDir);
      // A writable mount's indexes (its base's, its commits') are in the cache it was mounted with.
      const result = await pushImage({ ...source, ...(writable ? { cacheDir: writable.cacheDir } : {}), concurrency: Number.isInteger(jobs) && jobs > 0 ? jobs : 3, events: progress }, pushable);
      progress.finish();
      if (json) return json.done(result);
      say(`${result.reference}: pushed, manifest ${result.manifestDigest} (${formatBytes(result.bytesSent)} of layers sent)`);
      if (result.indexes.pushed) say(`Layer indexes pushed with it (${result.indexes.digest}): a krgo mount of it is lazy at once`);
      else process.stderr.write(`warning: layer indexes not pushed: ${result.indexes.reason}\n`);
    });
}
