import { connect, type Socket, type TcpNetConnectOpts } from 'node:net';
import { hasProxySettings } from './proxy-settings.js';
import { parseReference, registryOrigin } from './reference.js';
import { mayNameMirrors, mirrorsFor } from './mirrors.js';

/**
 * Connections opened to a registry before the code that sends requests is loaded: a command
 * that knows its registry opens them first, so the TCP handshake (one round trip, and DNS) runs
 * while the rest of krgo loads, as a browser does for a `preconnect` hint (W3C Resource Hints,
 * §3.1). The transport's connector takes them before opening its own
 * (transport.ts); TLS is started on them there, with the transport's own options.
 */

/** Sockets not taken by then are closed: nothing waits for them. */
const UNTAKEN_MS = 10_000;

const waiting = new Map<string, Socket[]>();

const keyOf = (host: string, port: number) => `${host.toLowerCase()}:${port}`;

export function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** A host as net.connect takes it: an IPv6 literal without its brackets. */
function unbracketed(host: string): string {
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/**
 * Opens `count` connections to `origin` ahead of the requests that will use them. Nothing is
 * opened behind a proxy (the connections go to the proxy, which the proxy agent makes).
 */
export function preconnect(origin: URL, count: number): void {
  if (hasProxySettings()) return;
  const host = unbracketed(origin.hostname);
  const port = Number(origin.port) || defaultPort(origin.protocol);
  const key = keyOf(host, port);
  const sockets = waiting.get(key) ?? [];
  waiting.set(key, sockets);
  for (let i = 0; i < count; i++) {
    // As undici opens its own (lib/core/connect.js).
    const options: TcpNetConnectOpts & { highWaterMark: number } = { host, port, highWaterMark: 64 * 1024 };
    const socket = connect(options);
    // An idle socket of ours must not keep a finished command alive, nor outlive its use.
    socket.unref();
    const drop = () => {
      const at = sockets.indexOf(socket);
      if (at >= 0) sockets.splice(at, 1);
      socket.destroy();
    };
    // A refused or failed one is dropped: the transport connects on its own, and reports that.
    socket.on('error', drop);
    setTimeout(() => {
      if (sockets.includes(socket)) drop();
    }, UNTAKEN_MS).unref();
    sockets.push(socket);
  }
}

/** A connection opened ahead to host:port (connected or on its way), taken once. */
export function takePreconnected(host: string, port: number): Socket | undefined {
  const sockets = waiting.get(keyOf(unbracketed(host), port));
  for (let socket = sockets?.shift(); socket; socket = sockets?.shift()) {
    if (!socket.destroyed) return socket;
  }
  return undefined;
}

/**
 * Opens `count` connections to where an image is read from first: its first mirror
 * (registries.conf), else its registry. A reference or a file that does not parse opens nothing:
 * the command reports it when it gets there.
 */
export async function preconnectImage(image: string, insecure: boolean, count: number): Promise<void> {
  try {
    const reference = parseReference(image);
    // Without mirrors (most machines) the connections are opened now: after an await, they would
    // wait for what the command loads meanwhile (~20 ms for a mount) before they even start.
    const mirror = mayNameMirrors() ? (await mirrorsFor(reference))[0] : undefined;
    preconnect(mirror ? registryOrigin(mirror.registry, mirror.insecure || insecure) : registryOrigin(reference.registry, insecure), count);
  } catch {
    // nothing opened
  }
}
