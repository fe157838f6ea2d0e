import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOk } from '../../support/run.js';
import { tempDir } from '../../support/temp.js';

const MODULE = fileURLToPath(new URL('../../../src/util/optimizing-compiler.js', import.meta.url));
const CODE_CACHE_MODULE = fileURLToPath(new URL('../../../src/util/code-cache.js', import.meta.url));

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

/** A hot WebAssembly function (adds 1), run until V8 would tier it up; says whether it was. */
async function wasmTieredUp(keepBaseline: boolean): Promise<boolean> {
  const driver = `import { keepWebAssemblyBaseline } from ${JSON.stringify(MODULE)};
if (${keepBaseline}) keepWebAssemblyBaseline();
const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 6, 1, 0x60, 1, 0x7f, 1, 0x7f, 3, 2, 1, 0, 7, 5, 1, 1, 0x66, 0, 0, 0x0a, 9, 1, 7, 0, 0x20, 0, 0x41, 1, 0x6a, 0x0b]);
const { instance } = await WebAssembly.instantiate(bytes);
const add1 = instance.exports.f;
let sum = 0;
for (let round = 0; round < 20; round++) {
  for (let i = 0; i < 200000; i++) sum += add1(i);
  await new Promise((r) => setTimeout(r, 5));
}
process.stdout.write(JSON.stringify(%IsTurboFanFunction(add1)));`;
  const { stdout } = await runOk(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', driver]);
  return JSON.parse(stdout) as boolean;
}

describe('keeping WebAssembly (undici’s HTTP parser) in V8’s baseline compiler', () => {
  it('tiers a hot function up without it, and never with it', async () => {
    assert.equal(await wasmTieredUp(false), true, 'V8 tiers hot wasm up by default (else this test proves nothing)');
    assert.equal(await wasmTieredUp(true), false);
  });
});

describe('holding V8’s optimizing compiler during a mount’s start', () => {
  it('optimizes nothing while held, and hot code again once released', async () => {
    assert.deepEqual(await optimizedWhileHeld(), { held: false, released: true });
  });

  it('is released at exit, before a code cache is written, so the next run takes it', async () => {
    const tmp = await tempDir('compiler-hold');
    try {
      const bundle = join(tmp.path, 'bundle.cjs');
      await writeFile(bundle, 'function f(n) { return n + 1; }\nf(1);\n');
      const cacheFile = join(tmp.path, 'bundle.cache');
      // As the launcher and a mount do: compile, run, hold; the cache is written at exit.
      const driver = `import { compileWithCodeCache } from ${JSON.stringify(CODE_CACHE_MODULE)};
import { holdOptimizingCompiler } from ${JSON.stringify(MODULE)};
const compiled = compileWithCodeCache(${JSON.stringify(bundle)}, ${JSON.stringify(cacheFile)});
process.once('exit', () => process.stdout.write(JSON.stringify({ rejected: compiled.rejected ?? null, saved: compiled.save() })));
compiled.run();
holdOptimizingCompiler();`;
      const runs = [];
      for (let i = 0; i < 2; i++) runs.push(JSON.parse((await runOk(process.execPath, ['--input-type=module', '-e', driver])).stdout) as { rejected: boolean | null; saved: boolean });
      assert.deepEqual(runs, [{ rejected: null, saved: true }, { rejected: false, saved: false }]);
    } finally {
      await tmp.remove();
    }
  });

  it('leaves a compiler choice the user made alone', async () => {
    assert.deepEqual(await optimizedWhileHeld(['--no-turbofan']), { held: false, released: false });
  });
});
