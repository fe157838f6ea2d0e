import { KrgoError } from '../errors.js';

export const MediaType = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistTar: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

/** What a layer's media type says about its compression; undefined for non-layer types. */
export function layerCompression(mediaType: string): Compression | undefined {
  switch (mediaType) {
    case MediaType.ociLayerTar:
    case MediaType.ociLayerNondistTar:
      return 'none';
    case MediaType.dockerLayerGzip:
    case MediaType.dockerLayerForeignGzip:
    case MediaType.ociLayerGzip:
    case MediaType.ociLayerNondistGzip:
      return 'gzip';
    case MediaType.ociLayerZstd:
      return 'zstd';
    default:
      return undefined;
  }
}

/** Refuses, before any layer is fetched, an image with a layer krgo cannot read. */
export function assertSupportedLayers(layers: readonly { mediaType: string; digest: string }[]): void {
  for (const layer of layers) {
    if (layerCompression(layer.mediaType) === undefined) {
      throw new KrgoError('UNSUPPORTED_MEDIA_TYPE', `layer ${layer.digest} has media type ${layer.mediaType}, which krgo cannot read`);
    }
  }
}

export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
].join(', ');

/** The layer annotation that marks an eStargz layer (its TOC's digest). */
export const TOC_DIGEST_ANNOTATION = 'containerd.io/snapshot/stargz/toc.digest';
