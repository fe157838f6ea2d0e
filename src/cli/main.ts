#!/usr/bin/env node
import { Command } from 'commander';
import { registerPull } from './pull-command.js';
import { reportFailure } from './exit-codes.js';

const program = new Command()
  .name('krgo')
  .description('Docker Hub without Docker: pull OCI/Docker images from any registry into a plain directory\nfor LXC, systemd-nspawn, runc, chroot and friends.')
  .version('0.1.0');

registerPull(program);

program.parseAsync(process.argv).then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => process.exit(reportFailure(err)),
);
