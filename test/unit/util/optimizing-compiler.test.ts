import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { runOk } from '../../support/run.js';

const MODULE = fileURLToPath(new URL('../../../src/util/optimizing-compiler.js', import.meta.url));

/**
 * Runs a hot function while the compiler is held, then another after release, in a process of
 * its own (V8 flags are per process); says which of them V8 optimized.
 */
async function optimizedWhileHeld(nodeFlags: string[] = []): Promise<{ held: boolean; released: boolean }> {
  const driver = `import { holdOptimizingCompiler } from ${JSON.stringify(MODULE)};
const optimized = (f) => (%GetOptimizationStatus(f) & 16) !== 0;
const release = holdOptimizingCompiler();
function during(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
for (let i = 0; i < 3000; i++) during(5000);
const held = optimized(during);
release();
release();
function after(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 5; return s; }
for (let i = 0; i < 3000; i++) after(5000);
await new Promise((r) => setTimeout(r, 50));
for (let i = 0; i < 3000; i++) after(5000);
process.stdout.write(JSON.stringify({ held, released: optimized(after) }));`;
  const { stdout } = await runOk(process.execPath, ['--allow-natives-syntax', ...nodeFlags, '--input-type=module', '-e', driver]);
  return JSON.parse(stdout) as { held: boolean; released: boolean };
}

describe('holding V8’s optimizing compiler during a mount’s start', () => {
  it('optimizes nothing while held, and hot code again once released', async () => {
    assert.deepEqual(await optimizedWhileHeld(), { held: false, released: true });
  });

  it('leaves a compiler choice the user made alone', async () => {
    assert.deepEqual(await optimizedWhileHeld(['--no-turbofan']), { held: false, released: false });
  });
});
