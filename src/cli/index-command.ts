import type { Command } from 'commander';
import { formatBytes, formatDuration } from '../util/format.js';
import { imageSource, withImageOptions, type ImageFlags } from './image-options.js';

export function registerIndex(program: Command): void {
  withImageOptions(
    program
      .command('index')
      .description('build (or check) the layer indexes a lazy mount needs, in the cache')
      .argument('<image>', 'image reference'),
  )
    .option('--push', 'store the indexes in the registry, as an OCI artifact referring to the image, so other machines mount without a full pass')
    .action(async (image: string, flags: ImageFlags & { push?: boolean }) => {
    const [{ prepareImage }, { pushIndexArtifact }] = await Promise.all([import('../mount/prepare-image.js'), import('../index/index-artifact.js')]);
    const started = Date.now();
    const prepared = await prepareImage(imageSource(image, flags), {
      warn: (message) => process.stderr.write(`warning: ${message}\n`),
      layerIndexed: (layer, from, index, bytes) => {
        process.stdout.write(
          `layer ${layer + 1} ${index.layerDigest.slice(7, 19)}: ${from}, ${index.entries.length} entries, ${index.checkpoints.length} seek points, index ${formatBytes(bytes)} for ${formatBytes(index.compressedSize)} ${index.format} (${((100 * bytes) / index.compressedSize).toFixed(1)}%)\n`,
        );
      },
    });
    try {
      if (flags.push) {
        const digest = await pushIndexArtifact(prepared.client, prepared.image, prepared.indexes);
        process.stdout.write(`pushed index artifact ${digest} (subject ${prepared.image.manifestDigest})\n`);
      }
    } finally {
      await prepared.client.close();
    }
    process.stdout.write(`indexed ${prepared.indexes.length} layers in ${formatDuration(Date.now() - started)}\n`);
  });
}
