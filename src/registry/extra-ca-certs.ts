import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SecureContext } from 'node:tls';

// node:tls is loaded at the first TLS connection, as undici loads it: most commands never need it
// (a loopback registry is plain HTTP), and its load is ~3 ms of a command's start.
const require = createRequire(import.meta.url);

/**
 * NODE_EXTRA_CA_CERTS, deferred. Set, it makes Node 20 parse its whole root store as the process
 * starts (80-90 ms of CPU, nodejs/node#40524), so the `krgo` command (src/cli/krgo.sh) hands
 * the path over under this name instead, and krgo adds those certificates itself when it first
 * needs TLS: a command that opens no TLS connection never pays for them.
 */
export const DEFERRED_EXTRA_CA_CERTS = 'KRGO_DEFERRED_EXTRA_CA_CERTS';

/** The native side of a SecureContext, as node's own `ca` option drives it (lib/_tls_common.js). */
interface NativeSecureContext {
  addCACert?: (pem: string | Buffer) => void;
}

let made: { file: string; context: SecureContext | undefined } | undefined;

/**
 * The secure context every TLS connection of this process uses when extra certificates were
 * deferred: node's default store (whichever this node uses: bundled, or OpenSSL's with
 * --use-openssl-ca) plus the certificates of the file, as NODE_EXTRA_CA_CERTS gives them. Made
 * once, at the first TLS connection: one context shared by all connections, not one per
 * connection (each would parse the store again). Undefined when nothing was deferred, or when
 * the file cannot be read; then, as node does, its certificates are ignored with a warning.
 */
export function deferredExtraCaContext(warn: (message: string) => void, env: NodeJS.ProcessEnv = process.env): SecureContext | undefined {
  const file = env[DEFERRED_EXTRA_CA_CERTS];
  if (!file) return undefined;
  if (made?.file === file) return made.context;
  let context: SecureContext | undefined;
  try {
    const { createSecureContext, rootCertificates } = require('node:tls') as typeof import('node:tls');
    const pem = readFileSync(file);
    context = createSecureContext();
    const native = (context as SecureContext & { context?: NativeSecureContext }).context;
    // Adding to the default store is what NODE_EXTRA_CA_CERTS does; a node without that native
    // call gets the same trust from the documented option, from its bundled store.
    if (typeof native?.addCACert === 'function') native.addCACert(pem);
    else context = createSecureContext({ ca: [...rootCertificates, pem.toString('utf8')] });
  } catch (err) {
    warn(`ignoring extra certificates from ${file} (NODE_EXTRA_CA_CERTS): ${(err as Error).message}`);
    context = undefined;
  }
  made = { file, context };
  return context;
}

/**
 * The environment as the user gave it, for programs krgo runs on the user's behalf (credential
 * helpers): NODE_EXTRA_CA_CERTS back in place of its deferred name.
 */
export function environmentAsGiven(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const deferred = env[DEFERRED_EXTRA_CA_CERTS];
  if (deferred === undefined) return env;
  const { [DEFERRED_EXTRA_CA_CERTS]: _, ...rest } = env;
  return { ...rest, NODE_EXTRA_CA_CERTS: deferred };
}
