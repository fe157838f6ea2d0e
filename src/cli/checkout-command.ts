import type { Command } from 'commander';

export function registerCheckout(program: Command): void {
  program
    .command('checkout')
    .description('restore a layer branch of a rootfs pulled with -g exactly (owners, modes, devices, empty dirs, times)')
    .argument('<branch>', 'layer_<n>_<digest>, or just the layer number n')
    .option('-r, --rootfs <dir>', 'the rootfs written by `krgo pull -g` or `krgo materialize -g`', '.')
    .addHelpText(
      'after',
      `
git checkout alone brings back contents, symlinks and the exec bit; krgo checkout also restores
what the branch's record keeps: empty directories, devices and fifos, hardlinks, owners, every
mode bit, xattrs and nanosecond times, and removes what the branch does not have. Refused when
the work tree has changes no branch holds. New layers are committed on the top layer only:
check it out again before \`krgo commit\`.`,
    )
    .action(async (branch: string, flags: { rootfs: string }) => {
      const { checkoutBranch } = await import('../git/checkout-branch.js');
      const result = await checkoutBranch(flags.rootfs, branch);
      process.stdout.write(`${result.branch} checked out (${result.fixed} paths restored beyond what git keeps)\n`);
    });
}
