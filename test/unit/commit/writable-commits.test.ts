import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCommits, saveCommits } from '../../../src/commit/writable-commits.js';
import { tempDir } from '../../support/temp.js';
import { KrgoError } from '../../../src/errors.js';
import { parseDigest } from '../../../src/digest.js';

const isCode = (code: string) => (err: unknown) => err instanceof KrgoError && err.code === code;

describe('the state of a writable mount', () => {
  it('starts at the base image, keeps commits, and says what to do when a record is damaged or from before commits', async () => {
    const tmp = await tempDir('writable-state');
    try {
      const state = tmp.path;
      await assert.rejects(loadCommits(state), isCode('NOT_FOUND'));
      const base = { reference: 'localhost:5000/x:1', manifestDigest: 'sha256:' + 'a'.repeat(64), manifest: Buffer.from('{"layers":[]}').toString('base64'), config: Buffer.from('{}').toString('base64') };
      await writeFile(join(state, 'image.json'), JSON.stringify(base));
      const first = await loadCommits(state);
      assert.equal(first.source, base.reference);
      assert.deepEqual(first.layers, []);
      assert.equal(first.manifest.toString(), '{"layers":[]}');
      await saveCommits(state, { ...first, manifest: Buffer.from('{"layers":[1]}'), layers: [{ digest: parseDigest(`sha256:${'b'.repeat(64)}`), diffId: parseDigest(`sha256:${'c'.repeat(64)}`), size: 1, message: 'm' }] });
      assert.equal((await loadCommits(state)).layers.length, 1);
      await writeFile(join(state, 'commits.json'), '{not json');
      await assert.rejects(loadCommits(state), isCode('GIT_STATE'));
      await writeFile(join(state, 'image.json'), JSON.stringify({ manifestDigest: base.manifestDigest }));
      await assert.rejects(loadCommits(state), (err: unknown) => isCode('GIT_STATE')(err) && /predates commits/.test((err as Error).message));
      await writeFile(join(state, 'image.json'), '{"manifestDig');
      await assert.rejects(loadCommits(state), (err: unknown) => isCode('GIT_STATE')(err) && /base image record .* is damaged/.test((err as Error).message));
    } finally {
      await tmp.remove();
    }
  });
});
