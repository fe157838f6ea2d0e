import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { limitConcurrency } from '../../../src/util/concurrency.js';
import { deferred } from '../../../src/util/deferred.js';

describe('limitConcurrency', () => {
  it('runs at most `limit` at once, in order, urgent ones first among those waiting', async () => {
    const limit = limitConcurrency(2);
    const started: string[] = [];
    let active = 0;
    let most = 0;
    const gates = new Map<string, ReturnType<typeof deferred<void>>>();
    const task = (name: string, urgent = false) =>
      limit(async () => {
        started.push(name);
        most = Math.max(most, ++active);
        const gate = deferred<void>();
        gates.set(name, gate);
        await gate.promise;
        active--;
        return name;
      }, urgent);
    const all = [task('a'), task('b'), task('c'), task('d'), task('u1', true), task('e'), task('u2', true)];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, ['a', 'b']);
    for (const name of ['a', 'b', 'u1', 'u2', 'c', 'd', 'e']) {
      await new Promise((r) => setImmediate(r));
      gates.get(name)!.resolve();
    }
    assert.deepEqual(await Promise.all(all), ['a', 'b', 'c', 'd', 'u1', 'e', 'u2']);
    assert.deepEqual(started, ['a', 'b', 'u1', 'u2', 'c', 'd', 'e'], 'urgent ones in their own order, before the others waiting');
    assert.equal(most, 2);
  });
});
