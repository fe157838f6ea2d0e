import type { Command } from 'commander';
import { formatBytes, formatDuration } from '../util/format.js';
import { gitDirFor, rootfsOf } from '../hostfs/rootfs-paths.js';
import { requireRoot } from '../util/privileges.js';
import { imageSource, withImageOptions, type ImageFlags } from './image-options.js';

export function registerMaterialize(program: Command): void {
  withImageOptions(
    program
      .command('materialize')
      .description('write the full rootfs from the layer indexes and the span cache, fetching only what is missing')
      .argument('<image>', 'image reference')
      .option('-r, --rootfs <dir>', 'directory to write to (default: the image name); must not exist or be empty'),
  )
    .option('-g, --git', 'write one git branch per layer, as `krgo pull -g` does (for krgo commit and push)')
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      '\nThe result is the same tree `krgo pull` (or `krgo pull -g`) writes. Spans a mount of the same\nimage already fetched come from the cache; the rest is fetched with range requests, in parallel.',
    )
    .action(async (image: string, flags: ImageFlags & { rootfs?: string; quiet?: boolean; git?: boolean }) => {
      requireRoot('krgo materialize');
      const [{ materializeImage }, { materializeProgress }] = await Promise.all([import('../materialize/materialize-image.js'), import('./materialize-progress.js')]);
      const started = Date.now();
      const gitDir = flags.git ? gitDirFor(rootfsOf(image, flags.rootfs)) : undefined;
      const shown = materializeProgress(process.stdout, flags.quiet ? 'quiet' : process.stdout.isTTY ? 'tty' : 'plain', gitDir);
      const result = await materializeImage({
        ...imageSource(image, flags),
        ...(flags.rootfs ? { rootfs: flags.rootfs } : {}),
        ...(flags.git ? { git: true } : {}),
        events: {
          warn: (message) => process.stderr.write(`warning: ${message}\n`),
          layerIndexing: (layer, digest, size) => shown.layerIndexing(layer, digest, size),
          layerIndexed: (layer, source, index) => shown.layerIndexed(layer, source, index.layerDigest, index.entries.length),
          writing: (total) => shown.writing(total),
          progress: (written, fetched) => shown.progress(written, fetched),
        },
      }).finally(() => shown.finish());
      if (!flags.quiet) {
        process.stdout.write(`${result.rootfs}: ${result.entries} entries, ${formatBytes(result.bytes)} of files, ${formatBytes(result.fetched)} fetched, in ${formatDuration(Date.now() - started)}\n`);
      }
    });
}
