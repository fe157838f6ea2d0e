/** HTTP_PROXY / HTTPS_PROXY / NO_PROXY (either case; an empty one is unset), as curl and docker read them. */
export function proxySettings(): { httpProxy?: string; httpsProxy?: string; noProxy?: string } | undefined {
  const read = (name: string) => process.env[name.toLowerCase()] || process.env[name] || undefined;
  const httpProxy = read('HTTP_PROXY');
  const httpsProxy = read('HTTPS_PROXY') ?? httpProxy;
  if (!httpProxy && !httpsProxy) return undefined;
  const noProxy = read('NO_PROXY');
  return { ...(httpProxy ? { httpProxy } : {}), ...(httpsProxy ? { httpsProxy } : {}), noProxy: noProxy ?? '' };
}

export function hasProxySettings(): boolean {
  return proxySettings() !== undefined;
}
