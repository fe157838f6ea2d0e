import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { startTokenGateway, type TokenGateway } from '../support/token-gateway.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { busyboxImage } from '../support/fixtures.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';
import { runOk } from '../support/run.js';
import { pullImage } from '../../src/pull/pull-image.js';
import { parseUserPass } from '../../src/registry/credentials.js';
import { LOCALHOST_CERT } from '../support/tls-localhost.js';

const PASSWORD = 's3cret-Pa55';

describe('registry authentication', () => {
  let open: RunningRegistry;
  let locked: RunningRegistry;
  let gateway: TokenGateway;
  let privateGateway: TokenGateway;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let layoutDir: string;

  before(async () => {
    work = await tempDir('auth');
    open = await startRegistry();
    locked = await startRegistry({ htpasswd: `alice:${bcrypt.hashSync(PASSWORD, 8)}\n` });
    layoutDir = join(work.path, 'layout');
    const layout = new OciLayoutWriter(layoutDir);
    await layout.addImage('bb', busyboxImage());
    await layout.finish();
    await skopeoPush(layoutDir, 'bb', `${open.host}/library/busybox:latest`, 'v2s2');
    await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `alice:${PASSWORD}`, `oci:${layoutDir}:bb`, `docker://${locked.host}/team/busybox:1`]);
    gateway = await startTokenGateway(open.host, { alice: PASSWORD });
    privateGateway = await startTokenGateway(open.host, { alice: PASSWORD }, { anonymousPull: false });
  });

  after(async () => {
    await gateway?.stop();
    await privateGateway?.stop();
    await open?.stop();
    await locked?.stop();
    await work?.remove();
  });

  const pull = (image: string, name: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
    krgo(['pull', image, '-r', join(work.path, name), '--cache-dir', join(work.path, 'cache'), ...extra], { HOME: join(work.path, 'home'), ...env });

  it('anonymous bearer flow: token for the pull scope, blobs from a CDN that never sees credentials', async () => {
    const res = await pull(`${gateway.host}/library/busybox`, 'anon');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(await readFile(join(work.path, 'anon/etc/motd'), 'utf8'), 'hello from krgo\n');
    assert.deepEqual(gateway.log.tokenRequests[0]?.scope, ['repository:library/busybox:pull']);
    assert.equal(gateway.log.tokenRequests[0]?.service, 'krgo-test-registry');
    assert.equal(gateway.log.tokenRequests[0]?.authorization, undefined);
    assert.ok(gateway.log.cdnRequests.length >= 2, 'config and layers came from the CDN');
    assert.ok(gateway.log.cdnRequests.every((r) => r.authorization === undefined), 'no Authorization header reaches the CDN');
  });

  it('-u USER:PASS goes to the token realm only; the registry sees bearer tokens; nothing prints the password', async () => {
    const before = privateGateway.log.tokenRequests.length;
    const trace = join(work.path, 'http-trace.log');
    const res = await pull(`${privateGateway.host}/library/busybox`, 'with-user', ['-u', `alice:${PASSWORD}`], { KRGO_TRACE_HTTP: trace });
    assert.equal(res.code, 0, res.stderr);
    // KRGO_TRACE_HTTP: every request on a line (the 401, the token, the manifest, the redirected blobs), never a secret.
    const traced = await readFile(trace, 'utf8');
    assert.match(traced, /^\d+ GET \S+\/v2\/library\/busybox\/manifests\/latest 401 \d+$/m);
    assert.match(traced, /^\d+ GET \S+ 200 \d+$/m);
    assert.ok(traced.split('\n').filter(Boolean).length >= 5, traced);
    assert.ok(!traced.includes(PASSWORD) && !traced.includes('?') && !/Bearer|Basic/.test(traced), 'no credentials, tokens or queries');
    const tokenReq = privateGateway.log.tokenRequests.slice(before);
    assert.ok(tokenReq.length >= 1);
    assert.equal(tokenReq[0]!.authorization, `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`);
    assert.ok(privateGateway.log.registryRequests.every((r) => !r.authorization || r.authorization.startsWith('Bearer ')));
    assert.ok(privateGateway.log.cdnRequests.every((r) => r.authorization === undefined));
    assert.ok(!res.stdout.includes(PASSWORD) && !res.stderr.includes(PASSWORD));
  });

  it('wrong credentials fail with exit 3 and a message that does not leak them', async () => {
    const res = await pull(`${privateGateway.host}/library/busybox`, 'wrong', ['-u', 'alice:not-the-password']);
    assert.equal(res.code, 3);
    assert.match(res.stderr, /refused the given credentials \(HTTP 401\)/);
    assert.ok(!res.stderr.includes('not-the-password'));
  });

  it('a token that expires mid-pull is refreshed on the 401', async () => {
    const rootfs = join(work.path, 'refresh');
    const before = gateway.log.tokenRequests.length;
    await pullImage({
      image: `${gateway.host}/library/busybox`,
      rootfs,
      cacheDir: join(work.path, 'cache-refresh'),
      events: { resolved: () => gateway.revokeTokens() },
    });
    assert.equal(await readFile(join(rootfs, 'etc/motd'), 'utf8'), 'hello from krgo\n');
    assert.ok(gateway.log.tokenRequests.length - before >= 2, 'a second token was fetched after the revocation');
  });

  it('Basic auth on the real registry (htpasswd): -u works, no login is a clear exit 3', async () => {
    const denied = await pull(`${locked.host}/team/busybox:1`, 'basic-denied');
    assert.equal(denied.code, 3);
    assert.match(denied.stderr, /needs a login: pass -u USER:PASSWORD/);
    const ok = await pull(`${locked.host}/team/busybox:1`, 'basic-ok', ['-u', `alice:${PASSWORD}`]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('~/.docker/config.json auths are used when no -u is given', async () => {
    const dockerDir = join(work.path, 'docker-auths');
    await mkdir(dockerDir, { recursive: true });
    await writeFile(join(dockerDir, 'config.json'), JSON.stringify({ auths: { [locked.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } } }));
    const res = await pull(`${locked.host}/team/busybox:1`, 'config-auths', [], { DOCKER_CONFIG: dockerDir });
    assert.equal(res.code, 0, res.stderr);
  });

  it('credHelpers win over credsStore and auths', async () => {
    const dockerDir = join(work.path, 'docker-helpers');
    const bin = join(work.path, 'bin');
    await mkdir(dockerDir, { recursive: true });
    await mkdir(bin, { recursive: true });
    const helper = (name: string, user: string, pass: string) =>
      writeFile(join(bin, `docker-credential-${name}`), `#!/bin/sh\nread server\necho "$server" >> ${join(work.path, `${name}.asked`)}\necho "\${NODE_EXTRA_CA_CERTS-unset} \${KRGO_DEFERRED_EXTRA_CA_CERTS-unset}" > ${join(work.path, `${name}.env`)}\necho '{"ServerURL":"'$server'","Username":"${user}","Secret":"${pass}"}'\n`, { mode: 0o755 });
    await helper('good', 'alice', PASSWORD);
    await helper('store', 'alice', 'wrong-from-store');
    await chmod(join(bin, 'docker-credential-good'), 0o755);
    await writeFile(
      join(dockerDir, 'config.json'),
      JSON.stringify({ credsStore: 'store', credHelpers: { [locked.host]: 'good' }, auths: { [locked.host]: { auth: Buffer.from('alice:wrong-from-auths').toString('base64') } } }),
    );
    // The krgo command defers NODE_EXTRA_CA_CERTS (krgo.sh): a helper still gets it as the user set it.
    const extraCerts = join(work.path, 'extra.pem');
    await writeFile(extraCerts, LOCALHOST_CERT);
    const res = await pull(`${locked.host}/team/busybox:1`, 'config-helper', [], { DOCKER_CONFIG: dockerDir, PATH: `${bin}:${process.env['PATH']}`, NODE_EXTRA_CA_CERTS: extraCerts });
    assert.equal(res.code, 0, res.stderr);
    assert.equal((await readFile(join(work.path, 'good.asked'), 'utf8')).trim(), locked.host);
    assert.equal((await readFile(join(work.path, 'good.env'), 'utf8')).trim(), `${extraCerts} unset`);
  });

  it('parseUserPass keeps colons in passwords and refuses a missing user', () => {
    assert.deepEqual(parseUserPass('bob:a:b'), { kind: 'basic', username: 'bob', password: 'a:b' });
    assert.throws(() => parseUserPass(':x'), /USER:PASSWORD/);
  });
});
