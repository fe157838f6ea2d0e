#!/usr/bin/env node
import { Command } from 'commander';
import { registerPull } from './pull-command.js';
import { registerMount } from './mount-command.js';
import { registerUmount } from './umount-command.js';
import { registerStatus } from './status-command.js';
import { registerIndex } from './index-command.js';
import { registerMaterialize } from './materialize-command.js';
import { reportFailure } from './exit-codes.js';

const program = new Command()
  .name('krgo')
  .description('Docker Hub without Docker: pull images from any registry into a directory, or mount them\nlazily over FUSE, for LXC, systemd-nspawn, runc, chroot and friends.')
  .version('0.1.0');

registerPull(program);
registerMount(program);
registerUmount(program);
registerStatus(program);
registerIndex(program);
registerMaterialize(program);

program.parseAsync(process.argv).then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => process.exit(reportFailure(err)),
);
