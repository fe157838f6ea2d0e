import type { Dispatcher, buildConnector as Connectors } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import undiciApi from 'undici/lib/api/index.js';
import DispatcherBase from 'undici/lib/dispatcher/dispatcher.js';
import buildConnector from 'undici/lib/core/connect.js';
import type { ConnectionOptions } from 'node:tls';
import type { Readable } from 'node:stream';
import { KrgoError } from '../errors.js';
import { traceFile } from '../util/trace-file.js';
import { parseChallenge, type Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';
import { registryOrigin } from './reference.js';
import { proxySettings } from './proxy-settings.js';
import { defaultPort, takePreconnected } from './preconnect.js';
import { deferredExtraCaContext } from './extra-ca-certs.js';
import { networkTimeoutScale } from './timeouts.js';
import { registryErrorFor } from './registry-errors.js';
import { retryDelayMs, isRetriableStatus, isRetriableNetworkError, sleep, type RetryPolicy, DEFAULT_RETRY } from './retry.js';

// What undici's index does once: every dispatcher gets request/connect/… (its proxy agent
// relies on it). See undici-parts.d.ts for why the index itself is not loaded.
Object.assign(DispatcherBase.prototype, undiciApi);

/** undici's `request(url, options)` on a given dispatcher. */
function request(url: URL, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher }): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  return dispatcher.request({ ...rest, origin: url.origin, path: `${url.pathname}${url.search}` });
}

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface TransportOptions {
  registry: string;
  insecure?: boolean;
  credentials?: Credentials;
  /** Looked up once, on the first challenge, so anonymous pulls never read config files. */
  lookupCredentials?: () => Promise<Credentials | undefined>;
  retry?: RetryPolicy;
  log?: (message: string) => void;
}

export interface RegistryRequest {
  method?: HttpMethod;
  /** Path under the registry origin (`/v2/...`) or an absolute URL (upload locations). */
  path: string;
  /** Token scopes, e.g. `repository:library/debian:pull`. */
  scopes: string[];
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Statuses handed back to the caller instead of raised as errors. */
  expect?: number[];
  /**
   * Answered after every earlier request sent with `inOrder` (one connection per host,
   * pipelined: RFC 9112 §9.3.2), so their bytes arrive in the order they were asked for instead
   * of sharing the link. For background reads whose order matters; never for one someone waits on.
   * Not retried when the connection fails: the caller asks again the ordinary way.
   */
  inOrder?: boolean;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { json(): Promise<unknown>; text(): Promise<unknown>; dump(): Promise<void> };
  url: URL;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

/**
 * KRGO_TRACE_HTTP=FILE: one line per HTTP request (ms since the process started, method, host and
 * path without the query, status, ms until the headers came), to see a command's critical path.
 * Never headers or queries: they can hold credentials and upload tokens.
 */
const HTTP_TRACE = traceFile('KRGO_TRACE_HTTP');

function traceRequest(trace: (line: string) => void, sentAt: number, method: string, url: URL, status: number): void {
  trace(`${sentAt.toFixed(0)} ${method} ${url.host}${url.pathname} ${status} ${(performance.now() - sentAt).toFixed(0)}`);
}

const USER_AGENT = 'krgo/0.1 (+https://github.com/krgo)';
/** A host that does not complete a connection is given up in seconds, not minutes. */
const CONNECT_OPTIONS = { timeout: 15_000 };
/** `inOrder` requests sent ahead on their connection before the first is answered. */
const ORDERED_PIPELINING = 64;
const MAX_REDIRECTS = 10;
const TOKEN_REFRESH_MARGIN_MS = 10_000;
/** No new attempt after a request failed for this long: a dead server fails within a minute. */
const RETRY_DEADLINE_MS = 45_000 * networkTimeoutScale();

export function headerValue(headers: RegistryResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * HTTP for one registry: auth (bearer tokens per scope, basic), redirects that never carry
 * credentials to another host, and retries with backoff on transient failures.
 */
export class RegistryTransport {
  readonly origin: URL;
  private readonly dispatcher: Dispatcher;
  /** The `inOrder` requests' dispatcher, made at the first. */
  private orderedDispatcher: Dispatcher | undefined;
  private readonly makeOrderedDispatcher: () => Dispatcher;
  private readonly tokens = new Map<string, CachedToken>();
  private challenge: Challenge | undefined;
  private credentials: Credentials | undefined;
  private credentialsLooked = false;
  private readonly retry: RetryPolicy;

  constructor(private readonly options: TransportOptions) {
    this.origin = registryOrigin(options.registry, options.insecure === true);
    this.credentials = options.credentials;
    this.credentialsLooked = options.credentials !== undefined;
    this.retry = options.retry ?? DEFAULT_RETRY;
    const agentOptions = {
      connections: 16,
      // A server that never answers is given up in seconds, not minutes (the retry loop below
      // has a deadline too); bodies are also watched for a minimum rate (transfer-rate.ts).
      headersTimeout: 15_000 * networkTimeoutScale(),
      bodyTimeout: 30_000 * networkTimeoutScale(),
    };
    const proxies = proxySettings();
    const warn = (message: string) => this.options.log?.(message);
    const agent = (options: typeof agentOptions & { pipelining?: number }) => {
      if (!proxies) return new Agent({ ...options, connect: registryConnector({}, warn) });
      // Behind a proxy, deferred extra certificates are taken at once: any of its three TLS legs may need them.
      const secureContext = deferredExtraCaContext(warn);
      const tls = secureContext ? { secureContext } : {};
      return new EnvHttpProxyAgent({ ...options, connect: { ...CONNECT_OPTIONS, ...tls }, requestTls: tls, proxyTls: tls, ...proxies });
    };
    this.dispatcher = agent(agentOptions);
    this.makeOrderedDispatcher = () => agent({ ...agentOptions, connections: 1, pipelining: ORDERED_PIPELINING });
  }

  async close(): Promise<void> {
    await Promise.all([this.dispatcher.close(), this.orderedDispatcher?.close()]);
  }

  async request(req: RegistryRequest): Promise<RegistryResponse> {
    const started = Date.now();
    let attempt = 0;
    let refreshedAuth = false;
    for (;;) {
      attempt++;
      let res: RegistryResponse;
      try {
        res = await this.send(req);
      } catch (err) {
        if (err instanceof KrgoError) throw err;
        // A pipelined request that failed is not sent down its lane again: the caller reads what
        // it lacks as ordinary requests (a server that mishandles pipelining fails it once).
        if (!req.inOrder && attempt < this.retry.attempts && isRetriableNetworkError(err) && Date.now() - started < RETRY_DEADLINE_MS) {
          const delay = retryDelayMs(this.retry, attempt, undefined);
          this.options.log?.(`connection error (${(err as Error).message}), retrying in ${delay} ms`);
          await sleep(delay);
          continue;
        }
        throw new KrgoError('NETWORK', `cannot reach ${this.origin.host}: ${(err as Error).message}`, { cause: err });
      }
      if (res.status === 401 && !refreshedAuth && !(req.expect ?? []).includes(401)) {
        const header = headerValue(res.headers, 'www-authenticate');
        await res.body.dump();
        if (!header) throw new KrgoError('UNAUTHORIZED', `${this.origin.host} refused access without saying how to log in`);
        await this.answerChallenge(header, req.scopes);
        refreshedAuth = true;
        continue;
      }
      if ((req.expect ?? [200]).includes(res.status)) return res;
      if (attempt < this.retry.attempts && isRetriableStatus(res.status)) {
        const delay = retryDelayMs(this.retry, attempt, headerValue(res.headers, 'retry-after'));
        await res.body.dump();
        this.options.log?.(`${this.origin.host} answered ${res.status}, retrying in ${delay} ms`);
        await sleep(delay);
        continue;
      }
      const text = await res.body.text().catch(() => '');
      throw registryErrorFor(res.status, String(text), `${req.method ?? 'GET'} ${this.describe(req.path)}`);
    }
  }

  private describe(path: string): string {
    return path.startsWith('http') ? new URL(path).pathname : path;
  }

  /** One logical request: follows redirects, attaching credentials only on the registry's origin. */
  private async send(req: RegistryRequest): Promise<RegistryResponse> {
    let url = new URL(req.path, this.origin);
    let method: HttpMethod = req.method ?? 'GET';
    let body = req.body;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...req.headers };
      if (url.origin === this.origin.origin) {
        const auth = await this.authorizationFor(req.scopes);
        if (auth) headers['authorization'] = auth;
      }
      const sentAt = performance.now();
      const res = await request(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        // undici holds a GET's followers until its headers are in unless told it is not blocking.
        ...(req.inOrder ? { dispatcher: (this.orderedDispatcher ??= this.makeOrderedDispatcher()), blocking: false } : { dispatcher: this.dispatcher }),
      });
      if (HTTP_TRACE) traceRequest(HTTP_TRACE, sentAt, method, url, res.statusCode);
      const location = headerValue(res.headers, 'location');
      const isRedirect = [301, 302, 303, 307, 308].includes(res.statusCode) && location;
      // Upload endpoints answer 201/202 with a Location that is data, not a redirect.
      if (!isRedirect || (req.expect ?? []).includes(res.statusCode)) {
        return { status: res.statusCode, headers: res.headers, body: res.body, url };
      }
      await res.body.dump();
      const next = new URL(location, url);
      if (next.protocol === 'http:' && url.protocol === 'https:' && !this.options.insecure) {
        throw new KrgoError('REGISTRY_ERROR', `refusing redirect from HTTPS to plain HTTP (${next.host})`);
      }
      if (res.statusCode === 303) {
        method = 'GET';
        body = undefined;
      }
      url = next;
    }
    throw new KrgoError('REGISTRY_ERROR', `too many redirects for ${this.describe(req.path)}`);
  }

  private async ensureCredentials(): Promise<Credentials | undefined> {
    if (!this.credentialsLooked) {
      this.credentialsLooked = true;
      this.credentials = await this.options.lookupCredentials?.();
    }
    return this.credentials;
  }

  private async authorizationFor(scopes: string[]): Promise<string | undefined> {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === 'basic') {
      const creds = await this.ensureCredentials();
      return creds?.kind === 'basic' ? basicHeader(creds) : undefined;
    }
    const key = scopes.join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt - TOKEN_REFRESH_MARGIN_MS > Date.now()) return cached.header;
    return this.fetchToken(scopes);
  }

  private async answerChallenge(header: string, scopes: string[]): Promise<void> {
    const challenge = parseChallenge(header);
    if (!challenge || (challenge.scheme !== 'bearer' && challenge.scheme !== 'basic')) {
      throw new KrgoError('UNAUTHORIZED', `${this.origin.host} asks for an unsupported authentication scheme`);
    }
    const hadChallenge = this.challenge !== undefined;
    this.challenge = challenge;
    this.tokens.delete(scopes.join(' '));
    if (challenge.scheme === 'basic') {
      const creds = await this.ensureCredentials();
      if (!creds || hadChallenge) {
        throw new KrgoError('UNAUTHORIZED', `${this.origin.host} needs a login: pass -u USER:PASSWORD or add it to ~/.docker/config.json`);
      }
    }
  }

  /** Bearer token flow: GET the realm (or POST with a refresh token), checked before credentials go to it. */
  private async fetchToken(scopes: string[]): Promise<string> {
    const challenge = this.challenge!;
    const realmText = challenge.params['realm'];
    if (!realmText) throw new KrgoError('UNAUTHORIZED', `${this.origin.host} gave a bearer challenge without a realm`);
    let realm: URL;
    try {
      realm = new URL(realmText);
    } catch {
      throw new KrgoError('UNAUTHORIZED', `${this.origin.host} gave an invalid token realm`);
    }
    const creds = await this.ensureCredentials();
    const trusted = await this.realmIsTrusted(realm);
    if (creds && !trusted) {
      this.options.log?.(`not sending credentials to token realm ${realm.origin}: it is not the registry's host or not HTTPS`);
    }
    const sendCreds = creds && trusted ? creds : undefined;
    const service = challenge.params['service'];
    let res;
    const sentAt = performance.now();
    try {
      if (sendCreds?.kind === 'identity-token') {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: sendCreds.token, client_id: 'krgo' });
        if (service) form.set('service', service);
        if (scopes.length) form.set('scope', scopes.join(' '));
        res = await request(realm, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': USER_AGENT },
          body: form.toString(),
          dispatcher: this.dispatcher,
        });
      } else {
        const url = new URL(realm);
        if (service) url.searchParams.set('service', service);
        for (const scope of scopes) url.searchParams.append('scope', scope);
        const headers: Record<string, string> = { 'user-agent': USER_AGENT };
        if (sendCreds?.kind === 'basic') headers['authorization'] = basicHeader(sendCreds);
        res = await request(url, { method: 'GET', headers, dispatcher: this.dispatcher });
      }
    } catch (err) {
      throw new KrgoError('NETWORK', `cannot reach token service ${realm.host}: ${(err as Error).message}`, { cause: err });
    }
    if (HTTP_TRACE) traceRequest(HTTP_TRACE, sentAt, sendCreds?.kind === 'identity-token' ? 'POST' : 'GET', realm, res.statusCode);
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new KrgoError(
        'UNAUTHORIZED',
        `token service ${realm.host} refused ${sendCreds ? 'the given credentials' : 'anonymous access'} (HTTP ${res.statusCode}) for ${scopes.join(' ')}`,
      );
    }
    const answer = (await res.body.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = answer.token ?? answer.access_token;
    if (!token) throw new KrgoError('UNAUTHORIZED', `token service ${realm.host} answered without a token`);
    const lifetime = (typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 60) * 1000;
    const header = `Bearer ${token}`;
    this.tokens.set(scopes.join(' '), { header, expiresAt: Date.now() + lifetime });
    return header;
  }

  private async realmIsTrusted(realm: URL): Promise<boolean> {
    // Loaded only for a token challenge: the public suffix list is large, and most commands never need it.
    const { isRealmTrusted } = await import('./realm-trust.js');
    return isRealmTrusted(realm, this.origin, this.options.insecure === true);
  }
}

function basicHeader(creds: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

/**
 * How the transport connects (undici's connector, with `tls` added to its options): a connection
 * opened ahead to the host (preconnect.ts) is taken first, and TLS started on it as on any other
 * (undici's `httpSocket`, its path for tunnels). One that failed before it connected is passed
 * over for a connection of undici's own, whose error is the one reported.
 */
export function registryConnector(tls: ConnectionOptions = {}, warn: (message: string) => void = () => undefined): Connectors.connector {
  const plain = buildConnector({ ...CONNECT_OPTIONS, ...tls });
  // Made at the first TLS connection: only then are deferred extra certificates read (extra-ca-certs.ts).
  let secure: Connectors.connector | undefined;
  const baseFor = (protocol: string): Connectors.connector => {
    if (protocol !== 'https:' || tls.ca || tls.secureContext) return plain;
    if (!secure) {
      const secureContext = deferredExtraCaContext(warn);
      secure = secureContext ? buildConnector({ ...CONNECT_OPTIONS, ...tls, secureContext }) : plain;
    }
    return secure;
  };
  return (options, callback) => {
    const base = baseFor(options.protocol);
    const raw = takePreconnected(options.hostname, Number(options.port) || defaultPort(options.protocol));
    if (!raw) return base(options, callback);
    raw.ref();
    raw.setKeepAlive(true, 60_000).setNoDelay(true);
    // undici refs and unrefs the TLS socket as it works and idles: that reaches the one below.
    if (options.protocol === 'https:') return base({ ...options, httpSocket: raw }, callback);
    if (!raw.connecting) {
      queueMicrotask(() => callback(null, raw));
      return;
    }
    const settle = (connected: boolean) => {
      raw.off('connect', onConnect).off('error', onError);
      clearTimeout(timer);
      if (connected) callback(null, raw);
      else base(options, callback);
    };
    const onConnect = () => settle(true);
    const onError = () => settle(false);
    const timer = setTimeout(() => {
      raw.destroy();
      settle(false);
    }, CONNECT_OPTIONS.timeout);
    raw.once('connect', onConnect).once('error', onError);
  };
}
