#!/usr/bin/env node
import { Command } from 'commander';
import { registerPull } from './pull-command.js';
import { registerMount } from './mount-command.js';
import { registerUmount } from './umount-command.js';
import { registerStatus } from './status-command.js';
import { registerIndex } from './index-command.js';
import { registerMaterialize } from './materialize-command.js';
import { registerCommit } from './commit-command.js';
import { registerPush } from './push-command.js';
import { registerCheckout } from './checkout-command.js';
import { reportFailure } from './exit-codes.js';

const program = new Command()
  .name('krgo')
  .description('Docker Hub without Docker: pull images from any registry into a directory, or mount them lazily over FUSE, for LXC, systemd-nspawn, runc, chroot and friends; change them with git and push them back.')
  .version('0.1.0');

registerPull(program);
registerMount(program);
registerUmount(program);
registerStatus(program);
registerIndex(program);
registerMaterialize(program);
registerCommit(program);
registerPush(program);
registerCheckout(program);

// A command whose work can no longer progress (a promise nothing will settle) empties the event
// loop and would end with status 0 as if it had succeeded. (Explicit exits, --help's included,
// do not pass here.)
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  process.stderr.write('krgo: internal error: the command stopped before finishing its work\n');
  process.exit(70);
});

program.parseAsync(process.argv).then(
  () => {
    settled = true;
    process.exit(process.exitCode ?? 0);
  },
  (err: unknown) => {
    settled = true;
    process.exit(reportFailure(err));
  },
);
