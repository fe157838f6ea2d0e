import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost, parseReference, apiHost } from '../../../src/registry/reference.js';

describe('image references', () => {
  const cases: [string, string, string, string | undefined, string | undefined][] = [
    ['debian', 'docker.io', 'library/debian', 'latest', undefined],
    ['debian:12', 'docker.io', 'library/debian', '12', undefined],
    ['user/img', 'docker.io', 'user/img', 'latest', undefined],
    ['index.docker.io/library/busybox:1', 'docker.io', 'library/busybox', '1', undefined],
    ['localhost:5000/a/b/c:v1.2', 'localhost:5000', 'a/b/c', 'v1.2', undefined],
    ['127.0.0.1:5000/img', '127.0.0.1:5000', 'img', 'latest', undefined],
    ['[::1]:5000/img:t', '[::1]:5000', 'img', 't', undefined],
    ['ghcr.io/org/app', 'ghcr.io', 'org/app', 'latest', undefined],
    [`busybox@sha256:${'a'.repeat(64)}`, 'docker.io', 'library/busybox', undefined, `sha256:${'a'.repeat(64)}`],
    [`r.io/x:tag@sha256:${'b'.repeat(64)}`, 'r.io', 'x', 'tag', `sha256:${'b'.repeat(64)}`],
  ];
  for (const [input, registry, repository, tag, digest] of cases) {
    it(input, () => {
      const ref = parseReference(input);
      assert.equal(ref.registry, registry);
      assert.equal(ref.repository, repository);
      assert.equal(ref.tag, tag);
      assert.equal(ref.digest, digest);
    });
  }
  for (const bad of ['', 'UPPER/case', 'a//b', 'img:bad tag', 'img@sha256:short', 'img@md5:abc', '../etc', 'a/-b']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => parseReference(bad), { code: 'BAD_REFERENCE' }));
  }
  it('knows loopback hosts and Docker Hub API host', () => {
    for (const h of ['localhost:5000', '127.0.0.1', '127.9.8.7:1', '[::1]:5000']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['example.com', '10.0.0.1:5000', 'localhost.evil.com', '128.0.0.1']) assert.ok(!isLoopbackHost(h), h);
    assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
  });
});
