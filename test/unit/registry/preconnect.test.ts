import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preconnect, preconnectImage, takePreconnected } from '../../../src/registry/preconnect.js';
import { RegistryTransport, registryConnector } from '../../../src/registry/transport.js';
import { LOCALHOST_CERT, LOCALHOST_KEY } from '../../support/tls-localhost.js';

/** An HTTP server answering every request with 200, counting the connections made to it. */
async function countingServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((_req, res) => res.end('{}'));
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

const until = async (done: () => boolean, what: string) => {
  for (let waited = 0; !done(); waited += 10) {
    if (waited > 5000) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

const closeServer = (server: { close(cb: () => void): unknown; closeAllConnections?: () => void }) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });

describe('connections opened ahead (preconnect)', () => {
  it('the transport sends its first requests over them, opening none of its own', async () => {
    const { server, port, connections } = await countingServer();
    try {
      preconnect(new URL(`http://127.0.0.1:${port}`), 2);
      await until(() => connections() === 2, 'the two connections opened ahead');
      const transport = new RegistryTransport({ registry: `127.0.0.1:${port}` });
      const answers = await Promise.all([transport.request({ path: '/v2/', scopes: [] }), transport.request({ path: '/v2/x', scopes: [] })]);
      for (const res of answers) assert.deepEqual(await res.body.json(), {});
      // Without them, the two requests at once would have opened two more.
      assert.equal(connections(), 2);
      await transport.close();
    } finally {
      await closeServer(server);
    }
  });

  it('for an image, they go to its first mirror when registries.conf names one', async () => {
    const mirror = await countingServer();
    const dir = await mkdtemp(join(tmpdir(), 'krgo-preconnect-'));
    const saved = process.env['CONTAINERS_REGISTRIES_CONF'];
    try {
      const conf = join(dir, 'registries.conf');
      await writeFile(conf, `[[registry]]\nprefix = "registry.invalid"\nlocation = "registry.invalid"\n[[registry.mirror]]\nlocation = "127.0.0.1:${mirror.port}/cache"\n`);
      process.env['CONTAINERS_REGISTRIES_CONF'] = conf;
      await preconnectImage('registry.invalid/team/app:1', false, 1);
      await until(() => mirror.connections() === 1, 'the connection to the mirror');
    } finally {
      if (saved === undefined) delete process.env['CONTAINERS_REGISTRIES_CONF'];
      else process.env['CONTAINERS_REGISTRIES_CONF'] = saved;
      await closeServer(mirror.server);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('without mirrors, the connections are opened before preconnectImage first yields: code loading after it does not hold them back', async () => {
    const { server, port, connections } = await countingServer();
    const saved = process.env['CONTAINERS_REGISTRIES_CONF'];
    process.env['CONTAINERS_REGISTRIES_CONF'] = '/nonexistent/registries.conf';
    try {
      void preconnectImage(`127.0.0.1:${port}/team/app:1`, false, 1);
      // Synchronously after the call: the socket is there, already connecting.
      const socket = takePreconnected('127.0.0.1', port);
      assert.ok(socket, 'opened at once');
      await until(() => connections() === 1, 'the connection');
      socket.destroy();
    } finally {
      if (saved === undefined) delete process.env['CONTAINERS_REGISTRIES_CONF'];
      else process.env['CONTAINERS_REGISTRIES_CONF'] = saved;
      await closeServer(server);
    }
  });

  it('one that could not connect is passed over: the request connects on its own', async () => {
    // A port with nothing on it when the connection ahead is opened, served when the request goes.
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await closeServer(probe);
    preconnect(new URL(`http://127.0.0.1:${port}`), 1);
    const server = createServer((_req, res) => res.end('{"ok":true}'));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const transport = new RegistryTransport({ registry: `127.0.0.1:${port}`, retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } });
      const res = await transport.request({ path: '/v2/', scopes: [] });
      assert.deepEqual(await res.body.json(), { ok: true });
      await transport.close();
    } finally {
      await closeServer(server);
    }
  });

  it('TLS is started on one taken for HTTPS, and an idle one keeps no process alive', async () => {
    let connections = 0;
    const server = createTlsServer({ key: LOCALHOST_KEY, cert: LOCALHOST_CERT }, (socket) => socket.end('hello'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      preconnect(new URL(`https://127.0.0.1:${port}`), 1);
      await until(() => connections === 1, 'the connection opened ahead');
      const connect = registryConnector({ ca: LOCALHOST_CERT });
      const secure = await new Promise<TLSSocket>((resolve, reject) =>
        connect({ hostname: '127.0.0.1', host: `127.0.0.1:${port}`, protocol: 'https:', port: String(port), servername: 'localhost' }, (err, socket) => (err ? reject(err) : resolve(socket as TLSSocket))),
      );
      assert.equal(secure.authorized, true, 'the certificate was checked against the given CA');
      const text = await new Promise<string>((resolve) => {
        let got = '';
        secure.on('data', (d: Buffer) => (got += d.toString()));
        secure.once('end', () => resolve(got));
      });
      assert.equal(text, 'hello');
      assert.equal(connections, 1, 'no connection of its own');
      // undici unrefs an idle connection: that must reach the socket opened ahead, below TLS.
      const refs = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
      const before = refs();
      secure.unref();
      assert.equal(refs(), before - 1);
      secure.destroy();
    } finally {
      await closeServer(server);
    }
  });

  it('ones never taken keep no process alive', async () => {
    const sockets = new Set<Socket>();
    const server = createTcpServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const module = fileURLToPath(new URL('../../../src/registry/preconnect.js', import.meta.url));
      const started = Date.now();
      const child = spawn(process.execPath, ['--input-type=module', '-e', `import { preconnect } from ${JSON.stringify(module)}; preconnect(new URL('http://127.0.0.1:${port}'), 2); setTimeout(() => undefined, 200);`], { stdio: 'inherit' });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0);
      assert.equal(sockets.size, 2, 'both connections were opened');
      // They are closed after 10 s when not taken; the process does not wait for that.
      assert.ok(Date.now() - started < 5000, `exited after ${Date.now() - started} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    }
  });
});
