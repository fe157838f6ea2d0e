import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A fault to inject on one request; returning undefined lets it through untouched. */
export type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  /** Forward the answer but cut the connection after this many body bytes. */
  | { kind: 'drop-after'; bytes: number }
  /** Forward the answer with the byte at this body offset flipped. */
  | { kind: 'corrupt'; offset: number }
  /** Forward without the Range header, so the registry answers 200 with the whole blob. */
  | { kind: 'ignore-range' }
  /** Forward with only the first range of a multi-range Range header (as servers that answer just that one do). */
  | { kind: 'first-range' }
  /** Send the headers and this many bytes, then hang (until the client gives up or is killed). */
  | { kind: 'stall-after'; bytes: number }
  /** Never answer: no status line, no headers (a server that accepted the connection and hung). */
  | { kind: 'no-answer' }
  /** Send the headers, then one body byte per second: a trickle that keeps every idle timer happy. */
  | { kind: 'trickle' }
  /** Forward the answer with these headers added (e.g. OCI-Chunk-Min-Length, which distribution 2.8 never sends). */
  | { kind: 'add-headers'; headers: Record<string, string> };

export interface SeenRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  contentRange?: string;
  contentLength?: number;
  /** Which client connection it came on (numbered as they were accepted). */
  connection: number;
}

export interface FaultProxy {
  host: string;
  seen: SeenRequest[];
  bytesSent: number;
  /** Decides the fault for each request, in order of arrival. */
  setFaults(decide: (req: SeenRequest, index: number) => Fault | undefined): void;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of the real registry for the faults the real server cannot do:
 * dropped connections, 5xx and 429 answers, corrupt bytes, ignored Range headers.
 */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  let decide: (req: SeenRequest, index: number) => Fault | undefined = () => undefined;
  const sockets = new Set<import('node:net').Socket>();
  const connectionOf = new WeakMap<import('node:net').Socket, number>();
  let connections = 0;
  const proxy: FaultProxy = {
    host: '',
    seen: [],
    bytesSent: 0,
    setFaults(fn) {
      decide = fn;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const [upHost, upPort] = upstream.split(':');

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers['content-range'] ? { contentRange: req.headers['content-range'] } : {}),
      ...(req.headers['content-length'] ? { contentLength: Number(req.headers['content-length']) } : {}),
      connection: connectionOf.get(req.socket) ?? -1,
    };
    const index = proxy.seen.push(seen) - 1;
    const fault = decide(seen, index);
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'text/plain', ...fault.headers });
      res.end(`injected ${fault.status}\n`);
      return;
    }
    if (fault?.kind === 'no-answer') return;
    const headers = { ...req.headers, host: upstream };
    if (fault?.kind === 'ignore-range') delete headers.range;
    if (fault?.kind === 'first-range' && headers.range) headers.range = headers.range.split(',')[0]!;
    const upstreamReq = request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers }, (up) => {
      // Redirects to the registry itself are rewritten to come back through the proxy.
      const outHeaders = { ...up.headers, ...(fault?.kind === 'add-headers' ? fault.headers : {}) };
      if (typeof outHeaders.location === 'string') outHeaders.location = outHeaders.location.replace(`http://${upstream}`, `http://${proxy.host}`);
      res.writeHead(up.statusCode ?? 502, outHeaders);
      let sent = 0;
      if (fault?.kind === 'trickle') {
        const held: Buffer[] = [];
        up.on('data', (chunk: Buffer) => held.push(chunk));
        const timer = setInterval(() => {
          const all = Buffer.concat(held);
          if (all.length === 0 || res.destroyed) return;
          held.splice(0, held.length, all.subarray(1));
          proxy.bytesSent++;
          res.write(all.subarray(0, 1));
        }, 1000);
        res.on('close', () => clearInterval(timer));
        return;
      }
      up.on('data', (chunk: Buffer) => {
        let out = chunk;
        if (fault?.kind === 'corrupt' && sent <= fault.offset && fault.offset < sent + chunk.length) {
          out = Buffer.from(chunk);
          const at = fault.offset - sent;
          out.writeUInt8(out.readUInt8(at) ^ 0xff, at);
        }
        if ((fault?.kind === 'drop-after' || fault?.kind === 'stall-after') && sent + out.length >= fault.bytes) {
          const part = out.subarray(0, fault.bytes - sent);
          proxy.bytesSent += part.length;
          sent += part.length;
          up.destroy();
          if (fault.kind === 'drop-after') res.write(part, () => res.socket?.destroy());
          else res.write(part);
          return;
        }
        sent += out.length;
        proxy.bytesSent += out.length;
        res.write(out);
      });
      up.on('end', () => res.end());
    });
    upstreamReq.on('error', () => res.socket?.destroy());
    req.pipe(upstreamReq);
  };

  const server: Server = createServer(handle);
  server.on('connection', (s) => {
    connectionOf.set(s, connections++);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
