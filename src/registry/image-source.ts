import type { Platform } from '../image/manifest.js';
import { describeError } from '../errors.js';
import { RegistryClient } from './client.js';
import type { Credentials } from './credentials.js';
import { mirrorsFor } from './mirrors.js';
import { parseReference, referenceTarget } from './reference.js';
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

/** A client of the image's own registry (for pushes, and reads without mirrors). */
export function clientFor(source: ImageSource, warn: (message: string) => void): RegistryClient {
  return new RegistryClient(parseReference(source.image), {
    ...(source.credentials ? { credentials: source.credentials } : {}),
    ...(source.insecure ? { insecure: true } : {}),
    ...(source.retry ? { retry: source.retry } : {}),
    log: warn,
  });
}

/**
 * A client to read the image from: the first mirror of its registry (containers-registries.conf)
 * that has its manifest, else the registry itself. A mirror that fails is passed over with a
 * warning, at once (no retries): a pull-through cache that is down must not hold a pull up.
 */
export async function readClientFor(source: ImageSource, warn: (message: string) => void): Promise<RegistryClient> {
  const reference = parseReference(source.image);
  for (const mirror of await mirrorsFor(reference)) {
    const endpoint = { registry: mirror.registry, repository: mirror.repository };
    const insecure = mirror.insecure || source.insecure === true;
    const probe = new RegistryClient(reference, { endpoint, ...(insecure ? { insecure: true } : {}), retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } });
    try {
      await probe.getManifest(referenceTarget(reference));
      return new RegistryClient(reference, { endpoint, ...(insecure ? { insecure: true } : {}), ...(source.retry ? { retry: source.retry } : {}), log: warn });
    } catch (err) {
      warn(`mirror ${mirror.registry}/${mirror.repository} did not serve ${referenceTarget(reference)}: ${describeError(err)}; trying the next`);
    } finally {
      await probe.close();
    }
  }
  return clientFor(source, warn);
}
