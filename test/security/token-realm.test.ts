import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isRealmTrusted } from '../../src/registry/realm-trust.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

/**
 * A token realm is where a client sends the user's password. A registry (or whoever answers in
 * its name) names it in a 401; krgo must not trust a realm only because its name ends like the
 * registry's.
 */
describe('credentials go only to a token realm of the registry itself', () => {
  it('evil.co.uk is not registry.co.uk (a public suffix is not a shared domain)', () => {
    assert.equal(isRealmTrusted(new URL('https://evil.co.uk/token'), new URL('https://registry.co.uk'), false), false);
    assert.equal(isRealmTrusted(new URL('https://auth.registry.co.uk/token'), new URL('https://registry.co.uk'), false), true);
  });

  it('a bucket of s3.amazonaws.com is not an ECR registry (private public-suffix entries count)', () => {
    const ecr = new URL('https://123456789012.dkr.ecr.us-east-1.amazonaws.com');
    assert.equal(isRealmTrusted(new URL('https://attacker.s3.amazonaws.com/token'), ecr, false), false);
  });

  it('Docker Hub: auth.docker.io serves registry-1.docker.io', () => {
    assert.equal(isRealmTrusted(new URL('https://auth.docker.io/token'), new URL('https://registry-1.docker.io'), false), true);
  });

  describe('a realm on another loopback port', () => {
    let registry: Server;
    let realm: Server;
    const realmRequests: (string | undefined)[] = [];
    let registryHost = '';

    before(async () => {
      realm = createServer((req, res) => {
        realmRequests.push(req.headers.authorization);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'stolen' }));
      });
      await new Promise<void>((r) => realm.listen(0, '127.0.0.1', r));
      const realmPort = (realm.address() as AddressInfo).port;
      registry = createServer((_req, res) => {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${realmPort}/token",service="x"` }).end();
      });
      await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
      registryHost = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
    });

    after(async () => {
      await new Promise((r) => registry?.close(r));
      await new Promise((r) => realm?.close(r));
    });

    it('gets no credentials: the token is asked for anonymously, and the pull fails as unauthorized', async () => {
      const work = await tempDir('realm');
      try {
        const res = await krgo(['pull', `${registryHost}/app:1`, '-u', 'alice:s3cret-pass', '-r', `${work.path}/rootfs`, '--cache-dir', `${work.path}/cache`]);
        assert.equal(res.code, 3, res.stderr);
        assert.ok(realmRequests.length > 0, 'the realm was asked');
        assert.ok(realmRequests.every((a) => a === undefined), `no Authorization header reached the realm: ${JSON.stringify(realmRequests)}`);
        assert.doesNotMatch(res.stdout + res.stderr, /s3cret-pass/);
        assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
      } finally {
        await work.remove();
      }
    });
  });
});
