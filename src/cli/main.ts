#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerPull } from './pull-command.js';
import { registerMount } from './mount-command.js';
import { registerUmount } from './umount-command.js';
import { registerMounts } from './mounts-command.js';
import { registerCache } from './cache-command.js';
import { registerCompletion } from './completion-command.js';
import { registerRun } from './run-command.js';
import { registerBundle } from './bundle-command.js';
import { registerStatus } from './status-command.js';
import { registerIndex } from './index-command.js';
import { registerMaterialize } from './materialize-command.js';
import { registerCommit } from './commit-command.js';
import { registerPush } from './push-command.js';
import { registerCheckout } from './checkout-command.js';
import { reportFailure } from './exit-codes.js';
import { krgoPackage } from '../util/package-root.js';
import { tracePhase } from '../util/phase-trace.js';

tracePhase('cli loaded');

/** The version of the package this CLI came with. */
const { version } = krgoPackage();

const program = new Command()
  .name('krgo')
  .description('Docker Hub without Docker: pull images from any registry into a directory, or mount them lazily over FUSE, for LXC, systemd-nspawn, runc, chroot and friends; change them with git and push them back.')
  .version(version, '-v, --version', 'print the version')
  // Usage errors end with status 2 (the exit code table), not commander's 1; --help and
  // --version still end with 0. Commander has already printed its message.
  .exitOverride();

registerPull(program);
registerMount(program);
registerUmount(program);
registerMounts(program);
registerStatus(program);
registerIndex(program);
registerMaterialize(program);
registerCommit(program);
registerPush(program);
registerCheckout(program);
registerCache(program);
registerRun(program);
registerBundle(program);
registerCompletion(program);

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
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    process.exit(reportFailure(err));
  },
);
