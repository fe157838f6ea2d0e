import type { Platform } from '../image/manifest.js';
import { RegistryClient } from './client.js';
import type { Credentials } from './credentials.js';
import { parseReference } from './reference.js';
import type { RetryPolicy } from './retry.js';

/** An image and how to reach it: what pull, mount and index all start from. */
export interface ImageSource {
  image: string;
  credentials?: Credentials;
  platform?: Platform;
  insecure?: boolean;
  retry?: RetryPolicy;
  cacheDir: string;
}

export function clientFor(source: ImageSource, warn: (message: string) => void): RegistryClient {
  return new RegistryClient(parseReference(source.image), {
    ...(source.credentials ? { credentials: source.credentials } : {}),
    ...(source.insecure ? { insecure: true } : {}),
    ...(source.retry ? { retry: source.retry } : {}),
    log: warn,
  });
}

