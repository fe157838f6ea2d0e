import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { startRegistry, freePort, type RunningRegistry } from '../support/registry.js';
import { OciLayoutWriter, skopeoPush } from '../support/oci-layout.js';
import { busyboxImage } from '../support/fixtures.js';
import { krgo } from '../support/krgo-cli.js';
import { tempDir } from '../support/temp.js';

/** HTTP_PROXY and NO_PROXY, through a real proxy (Debian's tinyproxy) on loopback. */
describe('an HTTP proxy from the environment', () => {
  let registry: RunningRegistry;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let proxy: ChildProcess;
  let proxyUrl = '';
  const proxyLog = () => readFile(join(work.path, 'tinyproxy.log'), 'utf8').catch(() => '');
  const noProxyEnv = { HTTP_PROXY: '', HTTPS_PROXY: '', http_proxy: '', https_proxy: '', NO_PROXY: '', no_proxy: '' };

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('proxy');
    const layout = new OciLayoutWriter(join(work.path, 'layout'));
    await layout.addImage('busybox', busyboxImage());
    await layout.finish();
    await skopeoPush(join(work.path, 'layout'), 'busybox', `${registry.host}/busybox:latest`, 'v2s2');
    const port = await freePort();
    await writeFile(
      join(work.path, 'tinyproxy.conf'),
      `Port ${port}\nListen 127.0.0.1\nTimeout 60\nLogFile "${join(work.path, 'tinyproxy.log')}"\nLogLevel Info\nMaxClients 20\nAllow 127.0.0.1\n`,
    );
    proxy = spawn('tinyproxy', ['-d', '-c', join(work.path, 'tinyproxy.conf')], { stdio: 'ignore' });
    proxyUrl = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      if ((await proxyLog()).includes('listening')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  after(async () => {
    proxy?.kill('SIGTERM');
    await registry?.stop();
    await work?.remove();
  });

  it('pulls through HTTP_PROXY: the registry is reached through the proxy', async () => {
    const res = await krgo(['pull', '-q', `${registry.host}/busybox:latest`, '-r', join(work.path, 'via-proxy'), '--cache-dir', join(work.path, 'cache-1')], { ...noProxyEnv, HTTP_PROXY: proxyUrl });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(await readFile(join(work.path, 'via-proxy', 'etc', 'motd'), 'utf8'), 'hello from krgo\n');
    // undici tunnels through the proxy (CONNECT), also for plain-HTTP registries.
    let log = '';
    for (let i = 0; i < 40 && !log.includes(`CONNECT ${registry.host}`); i++) {
      log = await proxyLog();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(log, new RegExp(`Request \\(file descriptor \\d+\\): CONNECT ${registry.host.replace(/\./g, '\\.')} HTTP/1\\.1`), 'the registry was reached through the proxy');
  });

  it('NO_PROXY lets a host go direct', async () => {
    const before = (await proxyLog()).length;
    const res = await krgo(['pull', '-q', `${registry.host}/busybox:latest`, '-r', join(work.path, 'direct'), '--cache-dir', join(work.path, 'cache-2')], { ...noProxyEnv, HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' });
    assert.equal(res.code, 0, res.stderr);
    await new Promise((r) => setTimeout(r, 500));
    assert.doesNotMatch((await proxyLog()).slice(before), /CONNECT 127\.0\.0\.1/, 'nothing went through the proxy');
  });
});
