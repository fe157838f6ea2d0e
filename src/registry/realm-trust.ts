import { getDomain } from 'tldts';
import { isLoopbackHost } from './reference.js';

/** The registrable domain of a host name (public suffix list, private entries included), if it has one. */
function registrableDomain(hostname: string): string | undefined {
  return getDomain(hostname, { allowPrivateDomains: true }) ?? undefined;
}

const isIpAddress = (hostname: string): boolean => /^[\d.]+$/.test(hostname) || hostname.startsWith('[');

/**
 * Whether credentials may go to a token realm: over HTTPS (plain HTTP only on loopback or with
 * --insecure), and to the registry's own host and port, or to a host of the same registrable
 * domain by the public suffix list (registry-1.docker.io and auth.docker.io share docker.io;
 * evil.co.uk and registry.co.uk share only a public suffix, as do two buckets of
 * s3.amazonaws.com). IP addresses and localhost share nothing but themselves, port included.
 */
export function isRealmTrusted(realm: URL, registryOrigin: URL, insecure: boolean): boolean {
  if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && (isLoopbackHost(realm.host) || insecure))) return false;
  if (realm.host === registryOrigin.host) return true;
  const realmHost = realm.hostname;
  const registryHost = registryOrigin.hostname;
  if (isIpAddress(realmHost) || isIpAddress(registryHost) || isLoopbackHost(realm.host) || isLoopbackHost(registryOrigin.host)) return false;
  const domain = registrableDomain(realmHost);
  return domain !== undefined && domain === registrableDomain(registryHost);
}
