import { arch } from 'node:os';
import { KrgoError } from '../errors.js';
import type { Descriptor, Platform } from './manifest.js';

const NODE_TO_OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function hostPlatform(): Platform {
  const architecture = NODE_TO_OCI_ARCH[arch()] ?? arch();
  return { os: 'linux', architecture, ...(architecture === 'arm64' ? { variant: 'v8' } : {}) };
}

export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, ...extra] = text.split('/');
  if (!os || !architecture || extra.length) throw new KrgoError('USAGE', `platform must be os/arch[/variant], got ${JSON.stringify(text)}`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Normalized variant: arm64 has v8 by default, arm v7. */
function variantOf(p: Platform): string | undefined {
  if (p.variant) return p.variant;
  if (p.architecture === 'arm64') return 'v8';
  if (p.architecture === 'arm') return 'v7';
  return undefined;
}

/** Whether an image of platform `have` serves a request for `wanted` (variants normalized). */
export function platformMatches(have: Platform, wanted: Platform): boolean {
  return have.os === wanted.os && have.architecture === wanted.architecture && (!wanted.variant || variantOf(have) === variantOf(wanted));
}

export function selectPlatform(manifests: Descriptor[], wanted: Platform): Descriptor {
  const candidates = manifests.filter((m) => m.platform && m.platform.os === wanted.os && m.platform.architecture === wanted.architecture);
  const match = candidates.find((m) => variantOf(m.platform!) === variantOf(wanted)) ?? (wanted.variant ? undefined : candidates[0]);
  if (!match) {
    const offered = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).filter((p) => p !== 'unknown/unknown');
    throw new KrgoError('NO_MATCHING_PLATFORM', `no image for ${formatPlatform(wanted)}; the index offers: ${offered.join(', ') || 'nothing'} (choose with --platform)`);
  }
  return match;
}
