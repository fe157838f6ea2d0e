import type { Command } from 'commander';
import { formatBytes, formatDuration } from '../util/format.js';
import { KrgoError } from '../errors.js';
import { imageSource, withImageOptions, type ImageFlags } from './image-options.js';
import { readProfile } from './profile-file.js';
import { indexingLine } from './progress.js';

export function registerIndex(program: Command): void {
  withImageOptions(
    program
      .command('index')
      .description('build (or check) the layer indexes a lazy mount needs, in the cache')
      .argument('<image>', 'image reference'),
  )
    .option('--push', 'store the indexes in the registry, as an OCI artifact referring to the image, so other machines mount without a full pass (an index a mount or pull made here, with whole seek windows, is built again with sparse ones first)')
    .option('--profile <file>', 'with --push: store this access profile (from `krgo mount --record-profile`, or a list of paths) with the indexes, and the seek windows where its replay starts inflating (read from the layers by range); mounts then fetch what it names at once (without it, the profile of the artifact being replaced is kept)')
    .option('--no-profile', 'with --push: store no access profile, not even the one of the artifact being replaced')
    .addHelpText(
      'after',
      `
Examples:
  krgo index --push localhost:5000/app:1.2
  krgo mount -d --record-profile app.profile localhost:5000/app:1.2 /mnt/app
  chroot /mnt/app /usr/bin/app --version; krgo umount /mnt/app
  krgo index --push --profile app.profile localhost:5000/app:1.2`,
    )
    .action(async (image: string, flags: ImageFlags & { push?: boolean; profile?: string | boolean }) => {
    if (flags.profile !== undefined && !flags.push) throw new KrgoError('USAGE', '--profile and --no-profile are about what is stored in the registry: use them with --push');
    let profile = typeof flags.profile === 'string' ? await readProfile(flags.profile) : undefined;
    const [{ prepareImage, storedProfile }, { pushIndexArtifact }] = await Promise.all([import('../remote/prepare-image.js'), import('../index/index-artifact.js')]);
    const started = Date.now();
    const source = imageSource(image, flags);
    const warn = (message: string) => process.stderr.write(`warning: ${message}\n`);
    const prepared = await prepareImage(source, {
      warn,
      layerIndexing: (layer, digest, size) => process.stdout.write(`${indexingLine(layer, digest, size)}\n`),
      layerIndexed: (layer, from, index, bytes) => {
        process.stdout.write(
          `layer ${layer + 1} ${index.layerDigest.slice(7, 19)}: ${from}, ${index.entries.length} entries, ${index.checkpoints.length} seek points, index ${formatBytes(bytes)} for ${formatBytes(index.compressedSize)} ${index.format} (${((100 * bytes) / index.compressedSize).toFixed(1)}%)${index.windows.size ? `, seek windows ${formatBytes(index.windows.size)} apart` : ''}\n`,
        );
      },
    }, { toPush: flags.push ? 'rebuild' : true });
    try {
      if (flags.push) {
        if (flags.profile === undefined) {
          // A new artifact replaces the one mounts find: what was recorded for the image stays.
          profile = await storedProfile(prepared, () => undefined).catch(() => undefined);
          if (profile) process.stdout.write(`keeping the access profile of the artifact it replaces (${profile.files.length} files; --no-profile drops it)\n`);
        }
        let windows: { count: number; blob: Buffer } | undefined;
        if (profile) {
          // The profile's seek windows are made for these very indexes (a kept profile's are dropped).
          profile = { version: profile.version, files: profile.files };
          const [{ openLazyImage }, { buildProfileWindows }, { buildProfileFetches }] = await Promise.all([import('../remote/lazy-image.js'), import('../index/build-profile-windows.js'), import('../index/build-profile-fetches.js')]);
          const lazy = await openLazyImage(prepared, { cacheDir: source.cacheDir, warn });
          const built = await buildProfileWindows(lazy, profile);
          await lazy.flush();
          if (built) {
            profile.seekWindows = built.windows;
            windows = { count: built.windows.points.length, blob: built.blob };
          }
          // What its replay will fetch, so that a mount asks for it as soon as the profile is in.
          const fetches = buildProfileFetches(lazy, profile);
          if (fetches) profile.fetches = fetches;
        }
        const digest = await pushIndexArtifact(prepared.client, prepared.image, prepared.indexes, { ...(profile ? { profile } : {}), ...(windows ? { profileWindows: windows.blob } : {}) });
        const profileNote = profile ? `, access profile of ${profile.files.length} files${windows ? ` with ${windows.count} seek windows (${formatBytes(windows.blob.length)})` : ''}` : '';
        process.stdout.write(`pushed index artifact ${digest} (subject ${prepared.image.manifestDigest}${profileNote})\n`);
      }
    } finally {
      await prepared.client.close();
    }
    process.stdout.write(`indexed ${prepared.indexes.length} layers in ${formatDuration(Date.now() - started)}\n`);
  });
}
