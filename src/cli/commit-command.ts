import type { Command } from 'commander';
import { formatBytes } from '../util/format.js';

export function registerCommit(program: Command): void {
  program
    .command('commit')
    .description('turn the changes made in a rootfs pulled with -g into a new layer (and branch)')
    .option('-r, --rootfs <dir>', 'the rootfs written by `krgo pull -g` or `krgo materialize -g`', '.')
    .requiredOption('-m, --message <msg>', 'what changed (kept in the image history and the git commit)')
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
Every change on the top layer branch becomes part of the layer: added, modified, deleted and
renamed files, type changes, owner/mode/xattr/mtime-only changes, new empty directories,
devices, fifos and hardlinks. Deletions become .wh. whiteouts; a directory emptied of all it
had (two entries or more) gets one opaque whiteout instead. The layer is gzip-compressed and
kept in .ROOTFS.krgo/blobs until \`krgo push\`; the branch layer_<n+1>_<digest> is created
and checked out.

Refused when nothing changed, or when HEAD is not on the top layer branch or a layer branch
was changed with git (older layers are what the image's digests describe).

Example:
  krgo pull debian -g -r rootfs && echo hi > rootfs/hello
  krgo commit -r rootfs -m "add hello" && krgo push localhost:5000/debian:hello -r rootfs`,
    )
    .action(async (flags: { rootfs: string; message: string; quiet?: boolean }) => {
      const { commitChanges } = await import('../git/commit-changes.js');
      const result = await commitChanges({
        rootfs: flags.rootfs,
        message: flags.message,
        warn: (message) => process.stderr.write(`warning: ${message}\n`),
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
