import type { Command } from 'commander';
import { formatBytes } from '../util/format.js';
import { defaultCacheDir } from '../util/paths.js';

export function registerCommit(program: Command): void {
  program
    .command('commit')
    .description('turn the changes made in a writable mount, or in a rootfs pulled with -g, into a new layer')
    .argument('[dir]', 'a writable mount (krgo mount -w), or a rootfs written by `krgo pull -g` (same as -r)')
    .option('-r, --rootfs <dir>', 'the rootfs written by `krgo pull -g` or `krgo materialize -g`, or a writable mountpoint', '.')
    .option('--cache-dir <dir>', 'the cache dir of the writable mount (found by itself for a running mount)')
    .option('--upper <dir>', 'the upper directory of a writable mount made with --upper (also once it is unmounted)')
    .requiredOption('-m, --message <msg>', 'what changed (kept in the image history and the git commit)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('-n, --dry-run', 'on a writable mount: list the layer members the commit would write, and write nothing')
    .addHelpText(
      'after',
      `
On a writable mount (krgo mount -w), what its upper directory changed since the last commit (or
since it was mounted) becomes a gzip layer on top of the image: files written or added, deletions
(overlayfs whiteouts) as .wh. entries, directories recreated over deleted ones (opaque) as
.wh..wh..opq, metadata-only changes (chmod, chown, touch, setfattr) as entries with the new
metadata, hardlinks, nanosecond times. The mount keeps showing the same tree; commits stack, and
\`krgo push TARGET -r MOUNTPOINT\` sends the new layers only (the base's never leave the registry).

On a rootfs pulled with -g, every change on the top layer branch becomes part of the layer: added, modified, deleted and
renamed files, type changes, owner/mode/xattr/mtime-only changes, new empty directories,
devices, fifos and hardlinks. Deletions become .wh. whiteouts; a directory emptied of all it
had (two entries or more) gets one opaque whiteout instead. The layer is gzip-compressed and
kept in .ROOTFS.krgo/blobs until \`krgo push\`; the branch layer_<n+1>_<digest> is created
and checked out.

Refused when nothing changed, or when HEAD is not on the top layer branch or a layer branch
was changed with git (older layers are what the image's digests describe).

Examples:
  krgo mount -d -w localhost:5000/debian /mnt/debian && echo hi > /mnt/debian/hello
  krgo commit /mnt/debian -m "add hello" && krgo push localhost:5000/debian:hello -r /mnt/debian
  krgo pull debian -g -r rootfs && echo hi > rootfs/hello
  krgo commit -r rootfs -m "add hello" && krgo push localhost:5000/debian:hello -r rootfs`,
    )
    .action(async (dir: string | undefined, flags: { rootfs: string; message: string; quiet?: boolean; cacheDir?: string; dryRun?: boolean; upper?: string }) => {
      const warn = (message: string) => process.stderr.write(`warning: ${message}\n`);
      const where = dir ?? flags.rootfs;
      const { findWritable } = await import('../commit/find-writable.js');
      const writable = await findWritable(where, flags.cacheDir, defaultCacheDir(), flags.upper);
      if (writable) {
        const { commitUpper } = await import('../commit/commit-upper.js');
        const listed = (members: string[]) => process.stdout.write(`${members.join('\n')}\n`);
        const result = await commitUpper(writable, flags.message, warn, flags.dryRun ? listed : undefined);
        if (result && !flags.quiet) {
          process.stdout.write(
            `Changes committed as layer ${result.position} (commit ${result.commits} on this mount)\n` +
              `Layer digest: ${result.digest}\n` +
              `Diff ID: ${result.diffId}\n` +
              `Layer size: ${result.size} bytes (${formatBytes(result.size)}; ${formatBytes(result.uncompressedSize)} uncompressed), ${result.entries} entries, index ${formatBytes(result.indexBytes)}\n`,
          );
        }
        return;
      }
      const { commitChanges } = await import('../git/commit-changes.js');
      const result = await commitChanges({
        rootfs: where,
        message: flags.message,
        warn,
      });
      if (!flags.quiet) {
        process.stdout.write(
          `Changes committed in ${result.branch}\n` +
            `Layer digest: ${result.digest}\n` +
            `Diff ID: ${result.diffId}\n` +
            `Layer size: ${result.size} bytes (${formatBytes(result.size)}; ${formatBytes(result.uncompressedSize)} uncompressed), ${result.entries} entries\n`,
        );
      }
    });
}
