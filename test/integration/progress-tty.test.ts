import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startBusyboxRegistry, type BusyboxSetup } from '../support/busybox-registry.js';
import { startWanEmulator, type WanEmulator } from '../support/wan-emulator.js';
import { KRGO_COMMAND, krgo } from '../support/krgo-cli.js';
import { runOnTty, screenLines } from '../support/tty.js';

/** `krgo pull` at a terminal, as a person sees it: a pseudo-terminal of a given width, a slow link. */
describe('pull progress on a terminal', () => {
  let setup: BusyboxSetup;
  let slow: WanEmulator;
  let image = '';

  before(async () => {
    setup = await startBusyboxRegistry('progress-tty');
    // Slow enough that the layer takes seconds: the display is seen while bytes come in.
    slow = await startWanEmulator(setup.registry.host, { delayMs: 5, bitsPerSecond: 2_000_000 });
    image = `${slow.host}/busybox:latest`;
  });

  after(async () => {
    await slow?.stop();
    await setup?.stop();
  });

  const pull = (rootfs: string, cache: string, columns: number, extra: string[] = [], interruptAfter?: number) =>
    runOnTty([KRGO_COMMAND, 'pull', image, '-r', join(setup.work, rootfs), '--cache-dir', join(setup.work, cache), ...extra], { columns, ...(interruptAfter ? { interruptAfter } : {}) });
  /** The lines the display redraws: the header and one per layer. */
  const redrawn = (output: string) => screenLines(output).filter((l) => /^([0-9a-f]{12}: |Pulling )/.test(l));

  it('Ctrl-C stops the pull with exit 130 and says that running it again resumes; it does', async () => {
    const stopped = await pull('interrupted', 'cache-c', 100, [], 700);
    assert.equal(stopped.code, 130, stopped.stdout);
    assert.match(stopped.stdout, /interrupted; run the same command again: downloaded layers are kept and the others resume/);
    const again = await krgo(['pull', image, '-r', join(setup.work, 'interrupted'), '--cache-dir', join(setup.work, 'cache-c'), '-q']);
    assert.equal(again.code, 0, again.stderr);
  });

  it('shows bytes and rate while a layer comes in, even while it is already being extracted', async () => {
    const res = await pull('first', 'cache-a', 100);
    assert.equal(res.code, 0, res.stdout);
    const receiving = screenLines(res.stdout).filter((l) => /^[0-9a-f]{12}: (Downloading|Extracting) +[\d.]+ [kM]?B\/[\d.]+ [kM]?B +[\d.]+ [kM]?B\/s$/.test(l));
    assert.ok(receiving.length > 0, `a live line with bytes and rate:\n${res.stdout}`);
    assert.match(res.stdout, /Pull complete/);
  });

  it('on a 40-column terminal no redrawn line is wider than the terminal; a layer already in the cache says "Already exists"', async () => {
    const first = await pull('narrow', 'cache-b', 40, ['--keep-blobs']);
    assert.equal(first.code, 0, first.stdout);
    assert.ok(redrawn(first.stdout).some((l) => l.endsWith('…')), `the live lines are cut to fit:\n${first.stdout}`);
    assert.deepEqual(redrawn(first.stdout).filter((l) => l.length > 39), [], 'a line as wide as the terminal wraps, and the redraw then climbs too few lines');
    const second = await pull('second', 'cache-b', 40);
    assert.equal(second.code, 0, second.stdout);
    assert.match(second.stdout, /[0-9a-f]{12}: Already exists/);
    assert.deepEqual(redrawn(second.stdout).filter((l) => l.length > 39), []);
  });

  it('materialize says where each index came from and shows bytes written and fetched as it goes; pull -g says it writes git', async () => {
    const res = await runOnTty([KRGO_COMMAND, 'materialize', image, '-r', join(setup.work, 'materialized'), '--cache-dir', join(setup.work, 'cache-m')], { columns: 100 });
    assert.equal(res.code, 0, res.stdout);
    assert.match(res.stdout, /layer 1 [0-9a-f]{12}: index built \(one pass over the layer\), \d+ entries/);
    assert.ok(screenLines(res.stdout).some((l) => /^Writing: [\d.]+ [kM]?B of [\d.]+ [kM]?B written, [\d.]+ [kM]?B fetched/.test(l)), `a live line of bytes written and fetched:\n${res.stdout}`);
    const git = await krgo(['pull', image, '-g', '-r', join(setup.work, 'with-git'), '--cache-dir', join(setup.work, 'cache-g')]);
    assert.equal(git.code, 0, git.stderr);
    const gitDir = join(setup.work, '.with-git.krgo', 'git');
    assert.ok(git.stdout.includes(`one git branch per layer (repository: ${gitDir})`), git.stdout);
  });
});
