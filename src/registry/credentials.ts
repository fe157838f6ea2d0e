import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KrgoError } from '../errors.js';
import { DOCKER_HUB } from './reference.js';
import { environmentAsGiven } from './extra-ca-certs.js';

/** What a registry login can be: a user and password, or an identity (refresh) token. */
export type Credentials =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'identity-token'; token: string };

export function parseUserPass(value: string): Credentials {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new KrgoError('USAGE', 'credentials must be given as USER:PASSWORD');
  return { kind: 'basic', username: value.slice(0, colon), password: value.slice(colon + 1) };
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Keys a registry may be filed under in config.json. */
function configKeys(registry: string): string[] {
  if (registry === DOCKER_HUB) {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'https://index.docker.io/v1', 'registry-1.docker.io'];
  }
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

function helperServerUrl(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}

function runHelper(helper: string, serverUrl: string): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper)) {
    return Promise.reject(new KrgoError('CREDENTIALS', `credential helper name ${JSON.stringify(helper)} is not valid`));
  }
  return new Promise((resolve, reject) => {
    const child = execFile(`docker-credential-${helper}`, ['get'], { timeout: 30_000, env: environmentAsGiven() }, (err, stdout) => {
      if (err) {
        // Helpers answer "credentials not found" with a non-zero exit: that means anonymous.
        if (/not found/i.test(String(stdout)) || (err as NodeJS.ErrnoException).code === 'ENOENT') {
          resolve(undefined);
          return;
        }
        reject(new KrgoError('CREDENTIALS', `credential helper docker-credential-${helper} failed`, { cause: err }));
        return;
      }
      try {
        const answer = JSON.parse(stdout) as { Username?: string; Secret?: string };
        if (!answer.Secret) resolve(undefined);
        else if (answer.Username === '<token>') resolve({ kind: 'identity-token', token: answer.Secret });
        else resolve({ kind: 'basic', username: answer.Username ?? '', password: answer.Secret });
      } catch (parseErr) {
        reject(new KrgoError('CREDENTIALS', `credential helper docker-credential-${helper} gave unreadable output`, { cause: parseErr }));
      }
    });
    child.stdin?.end(serverUrl);
  });
}

export function dockerConfigPath(): string {
  return join(process.env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json');
}

/** Looks a registry up in ~/.docker/config.json: credHelpers, then credsStore, then auths. */
export async function credentialsFromDockerConfig(registry: string, path = dockerConfigPath()): Promise<Credentials | undefined> {
  let config: DockerConfig;
  try {
    config = JSON.parse(await readFile(path, 'utf8')) as DockerConfig;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KrgoError('CREDENTIALS', `cannot read ${path}`, { cause: err });
  }
  const keys = configKeys(registry);
  const helper = keys.map((k) => config.credHelpers?.[k]).find(Boolean);
  if (helper) return runHelper(helper, helperServerUrl(registry));
  if (config.credsStore) {
    const fromStore = await runHelper(config.credsStore, helperServerUrl(registry));
    if (fromStore) return fromStore;
  }
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    if (entry.identitytoken) return { kind: 'identity-token', token: entry.identitytoken };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username && entry.password) return { kind: 'basic', username: entry.username, password: entry.password };
  }
  return undefined;
}
