import { KrgoError } from '../errors.js';
import { parseDigest, sha256Of, type Digest } from '../digest.js';
import { MediaType } from './media-types.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
  /** The content itself, base64 (OCI's embedded data); trusted only if it hashes to `digest`. */
  data?: string;
}

/**
 * A descriptor's embedded content (OCI image-spec 1.1, descriptor.md, "data"), when it is there
 * and is what the descriptor names; else undefined and the content is fetched.
 */
export function embeddedContent(descriptor: Pick<Descriptor, 'digest' | 'size' | 'data'>): Buffer | undefined {
  if (typeof descriptor.data !== 'string') return undefined;
  const bytes = Buffer.from(descriptor.data, 'base64');
  return bytes.length === descriptor.size && sha256Of(bytes) === descriptor.digest ? bytes : undefined;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  /** What an artifact manifest holds (OCI image-spec 1.1); absent for images. */
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs?: { type: string; diff_ids: string[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
  [key: string]: unknown;
}

function descriptor(raw: unknown, where: string): Descriptor {
  const d = raw as Partial<Descriptor> & { digest?: string };
  if (!d || typeof d !== 'object' || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new KrgoError('UNSUPPORTED_MANIFEST', `malformed descriptor in ${where}`);
  }
  return { ...d, mediaType: d.mediaType, digest: parseDigest(d.digest), size: d.size } as Descriptor;
}

/** Parses a manifest or index body; refuses schema1 and unknown types with a clear message. */
export function parseManifest(body: Buffer, contentType: string | undefined): ImageManifest | ImageIndex {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new KrgoError('UNSUPPORTED_MANIFEST', 'the registry returned a manifest that is not JSON');
  }
  const mediaType = (typeof raw['mediaType'] === 'string' ? raw['mediaType'] : undefined) ?? contentType?.split(';')[0]?.trim() ?? '';
  if (raw['schemaVersion'] === 1 || mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed) {
    throw new KrgoError(
      'UNSUPPORTED_MANIFEST',
      'this image only has a Docker schema 1 manifest, deprecated since 2017 and not supported; push it again with a current Docker or skopeo to convert it',
    );
  }
  if (Array.isArray(raw['manifests'])) {
    return { kind: 'index', mediaType: mediaType || MediaType.ociIndex, manifests: raw['manifests'].map((m, i) => descriptor(m, `index entry ${i}`)) };
  }
  if (raw['config'] && Array.isArray(raw['layers'])) {
    return {
      kind: 'manifest',
      mediaType: mediaType || MediaType.ociManifest,
      config: descriptor(raw['config'], 'manifest config'),
      layers: raw['layers'].map((l, i) => descriptor(l, `layer ${i}`)),
      ...(typeof raw['artifactType'] === 'string' ? { artifactType: raw['artifactType'] } : {}),
      ...(raw['annotations'] ? { annotations: raw['annotations'] as Record<string, string> } : {}),
    };
  }
  throw new KrgoError('UNSUPPORTED_MANIFEST', `unsupported manifest type ${JSON.stringify(mediaType)}`);
}
