import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface GatewayLog {
  tokenRequests: { scope: string[]; service?: string; authorization?: string }[];
  registryRequests: { method: string; path: string; authorization?: string }[];
  cdnRequests: { path: string; authorization?: string; host?: string }[];
}

export interface TokenGateway {
  /** host:port clients talk to, like registry-1.docker.io */
  host: string;
  log: GatewayLog;
  /** Forget every token issued so far: the next use gets a 401 (an expiry, as seen by the client). */
  revokeTokens(): void;
  stop(): Promise<void>;
}

/**
 * Behaves like Docker Hub in front of a real registry: a bearer challenge naming a token realm,
 * a token service that checks Basic credentials, and blob downloads redirected to a "CDN" on
 * another loopback address, which must never see the registry credentials.
 */
export async function startTokenGateway(upstream: string, users: Record<string, string> = {}, options: { anonymousPull?: boolean } = {}): Promise<TokenGateway> {
  const log: GatewayLog = { tokenRequests: [], registryRequests: [], cdnRequests: [] };
  const tokens = new Map<string, string[]>();
  const [upHost, upPort] = upstream.split(':');
  let host = '';
  let cdnHost = '';

  const forward = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const up = request({ host: upHost, port: Number(upPort), method: req.method, path, headers: { ...req.headers, host: upstream, authorization: '' } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  };

  const cdn: Server = createServer((req, res) => {
    log.cdnRequests.push({ path: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(req.headers.host ? { host: req.headers.host } : {}) });
    forward(req, res, (req.url ?? '').replace(/^\/cdn/, ''));
  });

  const gateway: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (url.pathname === '/token') {
      const authorization = req.headers.authorization;
      log.tokenRequests.push({ scope: url.searchParams.getAll('scope'), ...(url.searchParams.get('service') ? { service: url.searchParams.get('service')! } : {}), ...(authorization ? { authorization } : {}) });
      if (authorization) {
        const [user, pass] = Buffer.from(authorization.replace(/^Basic /, ''), 'base64').toString().split(':');
        if (!user || users[user] !== pass) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end('{"details":"incorrect username or password"}');
          return;
        }
      } else if (options.anonymousPull === false) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"details":"login required"}');
        return;
      }
      const token = randomBytes(16).toString('hex');
      tokens.set(token, url.searchParams.getAll('scope'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
      return;
    }
    log.registryRequests.push({ method: req.method ?? 'GET', path: url.pathname, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const repo = /^\/v2\/(.+?)\/(manifests|blobs|tags)\//.exec(url.pathname)?.[1];
    const scope = repo ? `repository:${repo}:pull` : undefined;
    const bearer = req.headers.authorization?.startsWith('Bearer ') ? req.headers.authorization.slice(7) : undefined;
    const granted = bearer ? tokens.get(bearer) : undefined;
    const allowed = granted && (!scope || granted.some((s) => s === scope || s.startsWith(`repository:${repo}:`)));
    if (!allowed) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="http://${host}/token",service="krgo-test-registry"${scope ? `,scope="${scope}"` : ''}`,
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (req.method === 'GET' && url.pathname.includes('/blobs/')) {
      res.writeHead(307, { location: `http://${cdnHost}/cdn${url.pathname}?signature=abc` });
      res.end();
      return;
    }
    forward(req, res, url.pathname + url.search);
  });

  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => cdn.listen(0, '127.0.0.2', resolve));
  host = `127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  cdnHost = `127.0.0.2:${(cdn.address() as AddressInfo).port}`;
  return {
    host,
    log,
    revokeTokens: () => tokens.clear(),
    stop: async () => {
      gateway.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([new Promise((r) => gateway.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}
