import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFERRED_EXTRA_CA_CERTS, deferredExtraCaContext, environmentAsGiven } from '../../../src/registry/extra-ca-certs.js';
import { registryConnector } from '../../../src/registry/transport.js';
import { LOCALHOST_CERT, LOCALHOST_KEY } from '../../support/tls-localhost.js';
import { tempDir } from '../../support/temp.js';

const server = createTlsServer({ key: LOCALHOST_KEY, cert: LOCALHOST_CERT }, (socket) => socket.end('hello'));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
const work = await tempDir('extra-ca');
after(async () => {
  server.close();
  await work.remove();
});

/** A TLS connection through the transport's connector: whether the server's certificate was trusted. */
function connectWith(warn: (message: string) => void): Promise<{ trusted: boolean; error?: string }> {
  const connect = registryConnector({}, warn);
  return new Promise((resolve) =>
    connect({ hostname: '127.0.0.1', host: `127.0.0.1:${port}`, protocol: 'https:', port: String(port), servername: 'localhost' }, (err, socket) => {
      (socket as TLSSocket | null)?.destroy();
      resolve(err ? { trusted: false, error: err.message } : { trusted: (socket as TLSSocket).authorized });
    }),
  );
}

describe('NODE_EXTRA_CA_CERTS deferred by the krgo command', () => {
  it('nothing deferred: a server whose CA node does not know is refused', async () => {
    delete process.env[DEFERRED_EXTRA_CA_CERTS];
    const result = await connectWith(() => assert.fail('no warning'));
    assert.equal(result.trusted, false);
    assert.match(result.error ?? '', /self[- ]signed/);
  });

  it("deferred: the file's certificates are trusted from the first TLS connection, through one shared context", async () => {
    const file = join(work.path, 'extra.pem');
    await writeFile(file, LOCALHOST_CERT);
    process.env[DEFERRED_EXTRA_CA_CERTS] = file;
    try {
      assert.deepEqual(await connectWith(() => assert.fail('no warning')), { trusted: true });
      const context = deferredExtraCaContext(() => undefined);
      assert.ok(context);
      assert.equal(deferredExtraCaContext(() => undefined), context, 'made once');
    } finally {
      delete process.env[DEFERRED_EXTRA_CA_CERTS];
    }
  });

  it('an unreadable file is one warning, and its certificates are ignored as node ignores them', async () => {
    const file = join(work.path, 'missing.pem');
    process.env[DEFERRED_EXTRA_CA_CERTS] = file;
    const warnings: string[] = [];
    try {
      const first = await connectWith((m) => warnings.push(m));
      const second = await connectWith((m) => warnings.push(m));
      assert.equal(first.trusted, false);
      assert.equal(second.trusted, false);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, new RegExp(`ignoring extra certificates from ${file} \\(NODE_EXTRA_CA_CERTS\\): ENOENT`));
    } finally {
      delete process.env[DEFERRED_EXTRA_CA_CERTS];
    }
  });

  it('programs run for the user get the variable back under its own name', () => {
    assert.deepEqual(environmentAsGiven({ PATH: '/bin', [DEFERRED_EXTRA_CA_CERTS]: '/etc/corp.pem' }), { PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/corp.pem' });
    const untouched = { PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/corp.pem' };
    assert.equal(environmentAsGiven(untouched), untouched);
  });
});
