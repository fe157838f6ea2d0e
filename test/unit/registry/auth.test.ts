import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenge } from '../../../src/registry/challenge.js';
import { isRealmTrusted } from '../../../src/registry/realm-trust.js';
import { retryDelayMs, isRetriableStatus } from '../../../src/registry/retry.js';

describe('auth challenges', () => {
  it('parses Docker Hub style bearer challenges', () => {
    const c = parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"');
    assert.deepEqual(c, { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/debian:pull' } });
  });
  it('parses basic challenges and escaped quotes', () => {
    assert.deepEqual(parseChallenge('Basic realm="a \\"b\\" c"'), { scheme: 'basic', params: { realm: 'a "b" c' } });
    assert.deepEqual(parseChallenge('Bearer realm=https://x/t, service=s'), { scheme: 'bearer', params: { realm: 'https://x/t', service: 's' } });
  });
  it('sends credentials only to HTTPS realms of the registry domain (or the loopback registry itself)', () => {
    const hub = new URL('https://registry-1.docker.io');
    assert.ok(isRealmTrusted(new URL('https://auth.docker.io/token'), hub, false));
    assert.ok(!isRealmTrusted(new URL('http://auth.docker.io/token'), hub, false), 'plain HTTP realm');
    assert.ok(!isRealmTrusted(new URL('https://evil.example/token'), hub, false), 'foreign realm');
    assert.ok(!isRealmTrusted(new URL('https://127.0.0.1/token'), hub, false), 'loopback realm for a remote registry');
    assert.ok(isRealmTrusted(new URL('http://127.0.0.1:5000/token'), new URL('http://127.0.0.1:5000'), false), 'the registry itself');
    assert.ok(isRealmTrusted(new URL('https://ghcr.io/token'), new URL('https://ghcr.io'), false));
    assert.ok(!isRealmTrusted(new URL('https://1.2.3.4/token'), new URL('https://5.6.3.4'), false), 'IP addresses share no domain');
  });
  it('retries what is transient and honours Retry-After', () => {
    for (const s of [408, 429, 500, 502, 503, 504]) assert.ok(isRetriableStatus(s), String(s));
    for (const s of [400, 401, 403, 404, 501]) assert.ok(!isRetriableStatus(s), String(s));
    const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 10_000 };
    assert.equal(retryDelayMs(policy, 1, '3'), 3000);
    assert.equal(retryDelayMs(policy, 1, '99999'), 10_000);
    const d = retryDelayMs(policy, 3, undefined);
    assert.ok(d >= 200 && d <= 400, String(d));
  });
});
