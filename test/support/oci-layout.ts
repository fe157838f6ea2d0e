import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { digestHex, sha256Of, type Digest } from '../../src/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { runOk } from './run.js';

export type LayerCompression = 'gzip' | 'none' | 'zstd';

export interface FixtureImage {
  /** `blob`: the layer as stored when it is not the tar compressed here (eStargz); `tar` is its content. */
  layers: { tar: Buffer; compression?: LayerCompression; blob?: Buffer; annotations?: Record<string, string> }[];
  architecture?: string;
  variant?: string;
  config?: Record<string, unknown>;
}

interface Blob {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

async function compress(tar: Buffer, kind: LayerCompression): Promise<Buffer> {
  if (kind === 'gzip') return gzipSync(tar);
  if (kind === 'none') return tar;
  const { mkdtemp, readFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'krgo-zstd-'));
  await writeFile(join(dir, 'l.tar'), tar);
  await runOk('zstd', ['-q', '-3', join(dir, 'l.tar'), '-o', join(dir, 'l.tar.zst')]);
  const out = await readFile(join(dir, 'l.tar.zst'));
  await rm(dir, { recursive: true, force: true });
  return out;
}

const LAYER_TYPES: Record<LayerCompression, string> = {
  gzip: MediaType.ociLayerGzip,
  none: MediaType.ociLayerTar,
  zstd: MediaType.ociLayerZstd,
};

/** Writes images into an OCI image layout by hand: the tests own every byte that goes in. */
export class OciLayoutWriter {
  private readonly manifests: { desc: Blob; annotations: Record<string, string> }[] = [];

  constructor(readonly dir: string) {}

  private async putBlob(mediaType: string, data: Buffer, annotations?: Record<string, string>): Promise<Blob> {
    const digest = sha256Of(data);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'blobs', 'sha256', digestHex(digest)), data);
    return { mediaType, digest, size: data.length, ...(annotations ? { annotations } : {}) };
  }

  private async putImage(image: FixtureImage): Promise<Blob> {
    const layers: Blob[] = [];
    const diffIds: string[] = [];
    for (const layer of image.layers) {
      const kind = layer.compression ?? 'gzip';
      layers.push(await this.putBlob(LAYER_TYPES[kind], layer.blob ?? (await compress(layer.tar, kind)), layer.annotations));
      diffIds.push(sha256Of(layer.tar));
    }
    const config = {
      created: '2024-01-01T00:00:00Z',
      architecture: image.architecture ?? 'amd64',
      ...(image.variant ? { variant: image.variant } : {}),
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: image.layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'krgo test fixture' })),
      ...image.config,
    };
    const configBlob = await this.putBlob(MediaType.ociConfig, Buffer.from(JSON.stringify(config)));
    const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configBlob, layers };
    return this.putBlob(MediaType.ociManifest, Buffer.from(JSON.stringify(manifest)));
  }

  async addImage(tag: string, image: FixtureImage): Promise<void> {
    this.manifests.push({ desc: await this.putImage(image), annotations: { 'org.opencontainers.image.ref.name': tag } });
  }

  /** A multi-platform image: an OCI index tagged `tag`. */
  async addIndex(tag: string, images: FixtureImage[]): Promise<void> {
    const entries = [];
    for (const image of images) {
      const desc = await this.putImage(image);
      entries.push({ ...desc, platform: { os: 'linux', architecture: image.architecture ?? 'amd64', ...(image.variant ? { variant: image.variant } : {}) } });
    }
    const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: entries };
    const desc = await this.putBlob(MediaType.ociIndex, Buffer.from(JSON.stringify(index)));
    this.manifests.push({ desc, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }

  async finish(): Promise<void> {
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const index = { schemaVersion: 2, manifests: this.manifests.map((m) => ({ ...m.desc, annotations: m.annotations })) };
    await writeFile(join(this.dir, 'index.json'), JSON.stringify(index));
  }
}

/** Pushes a tag of a layout to the registry with skopeo, in Docker v2s2 or OCI form. */
export async function skopeoPush(layoutDir: string, tag: string, destination: string, format: 'v2s2' | 'oci' | 'index'): Promise<void> {
  const args = ['copy', '--quiet', '--dest-tls-verify=false'];
  if (format === 'index') args.push('--all');
  else args.push('--format', format);
  await runOk('skopeo', [...args, `oci:${layoutDir}:${tag}`, `docker://${destination}`]);
}

/** The oracle: skopeo copies the image back out of the registry, umoci unpacks it. */
export async function umociUnpack(source: string, workDir: string, platform = 'linux/amd64'): Promise<string> {
  await mkdir(workDir, { recursive: true });
  const layout = join(workDir, 'oracle-layout');
  const [, arch, variant] = platform.split('/');
  const override = ['--override-arch', arch ?? 'amd64', ...(variant ? ['--override-variant', variant] : [])];
  await runOk('skopeo', ['copy', '--quiet', '--src-tls-verify=false', ...override, `docker://${source}`, `oci:${layout}:img`]);
  const bundle = join(workDir, 'oracle-bundle');
  await runOk('umoci', ['unpack', '--image', `${layout}:img`, bundle]);
  return join(bundle, 'rootfs');
}

/**
 * Pushes one image of a layout with plain distribution API calls, each distinct blob once:
 * for crafted manifests skopeo would take minutes over (one blob named a thousand times).
 */
export async function pushDirect(layoutDir: string, tag: string, registryHost: string, repository: string): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string; mediaType: string; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`no image tagged ${tag} in ${layoutDir}`);
  const blobPath = (digest: string) => join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const manifestBytes = await readFile(blobPath(entry.digest));
  const manifest = JSON.parse(manifestBytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  const base = `http://${registryHost}/v2/${repository}`;
  for (const digest of new Set([manifest.config.digest, ...manifest.layers.map((l) => l.digest)])) {
    const started = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    if (started.status !== 202) throw new Error(`upload of ${digest} not started: HTTP ${started.status}`);
    const location = new URL(started.headers.get('location')!, `http://${registryHost}`);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, { method: 'PUT', body: await readFile(blobPath(digest)), headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`upload of ${digest} failed: HTTP ${put.status}`);
  }
  const res = await fetch(`${base}/manifests/${tag}`, { method: 'PUT', body: manifestBytes, headers: { 'content-type': entry.mediaType } });
  if (res.status !== 201) throw new Error(`manifest push failed: HTTP ${res.status} ${await res.text()}`);
}
