import { sha256Of, type Digest } from '../digest.js';
import { MediaType } from './media-types.js';
import type { Descriptor, ImageConfig } from './manifest.js';

/** The layer media type that matches the manifest's family (Docker v2s2 or OCI). */
function gzipLayerType(manifest: { mediaType?: string; config?: { mediaType?: string } }): string {
  const docker = manifest.mediaType === MediaType.dockerManifest || manifest.config?.mediaType === MediaType.dockerConfig;
  return docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
}

export interface AppendedImage {
  manifest: Buffer;
  config: Buffer;
  /** The new layer as the manifest lists it. */
  descriptor: Descriptor;
}

/**
 * An image with one more gzip layer on top: its diff_id and a history entry (`krgo commit` and
 * the message) in the config, its descriptor in the manifest, in the source's format; every
 * other field kept as it was.
 */
export function appendLayer(manifestBytes: Buffer, configBytes: Buffer, layer: { digest: Digest; diffId: Digest; size: number }, message: string): AppendedImage {
  const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  const created = new Date().toISOString();
  config.created = created;
  config.rootfs = { type: 'layers', diff_ids: [...(config.rootfs?.diff_ids ?? []), layer.diffId] };
  config.history = [...(config.history ?? []), { created, created_by: 'krgo commit', comment: message }];
  const newConfig = Buffer.from(JSON.stringify(config));

  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { mediaType?: string; config: Record<string, unknown>; layers: unknown[] };
  const descriptor: Descriptor = { mediaType: gzipLayerType(manifest), digest: layer.digest, size: layer.size };
  manifest.config = { ...manifest.config, digest: sha256Of(newConfig), size: newConfig.length };
  manifest.layers = [...manifest.layers, descriptor];
  return { manifest: Buffer.from(JSON.stringify(manifest, null, 2)), config: newConfig, descriptor };
}
