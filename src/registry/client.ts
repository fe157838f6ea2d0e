import { watchTransferRate } from './transfer-rate.js';
import { KrgoError } from '../errors.js';
import { checkDigest, createDigester, parseDigest, type Digest } from '../digest.js';
import { MANIFEST_ACCEPT } from '../image/media-types.js';
import { embeddedContent, parseManifest, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, type Platform } from '../image/manifest.js';
import { selectPlatform, formatPlatform, platformMatches } from '../image/platform.js';
import { formatReference, referenceTarget, type ImageReference } from './reference.js';
import { headerValue, RegistryTransport, type RegistryResponse, type TransportOptions } from './transport.js';
import { credentialsFromDockerConfig } from './credentials.js';
import { ByteRangePartsReader, byteRangesBoundary, parseContentRange, rangesHeader, type ByteRange } from './byte-range-parts.js';

export interface FetchedManifest {
  digest: Digest;
  bytes: Buffer;
  parsed: ImageManifest | ImageIndex;
}

export interface ResolvedImage {
  reference: ImageReference;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  manifestDigest: Digest;
  /** The index the manifest was chosen from, for multi-platform images. */
  indexDigest?: Digest;
  platform?: Platform;
  /** The platform the user asked for (--platform), checked against a single image's config. */
  requestedPlatform?: Platform;
  config: ImageConfig;
  configBytes: Buffer;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

async function readLimited(res: RegistryResponse, limit: number, what: string, onChunk?: (chunk: Buffer) => void): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of watchTransferRate(res.body, () => res.body.destroy(), what)) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      res.body.destroy();
      throw new KrgoError('REGISTRY_ERROR', `${what} is larger than ${limit} bytes; refusing it`);
    }
    parts.push(chunk as Buffer);
    onChunk?.(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

/** Bytes read past the last range of a multi-range answer to end it cleanly, at most. */
const MAX_TAIL_READ = 64 * 1024;

/** The distribution API of one repository: manifests, verified blobs, ranges. */
export class RegistryClient {
  readonly transport: RegistryTransport;
  readonly pullScope: string;
  /** Where requests go: the reference's own registry and repository, or a mirror's (registries.conf). */
  readonly endpoint: { registry: string; repository: string };

  constructor(
    readonly reference: ImageReference,
    options: Omit<TransportOptions, 'registry'> & { endpoint?: { registry: string; repository: string } } = {},
  ) {
    const { endpoint, ...transportOptions } = options;
    this.endpoint = endpoint ?? { registry: reference.registry, repository: reference.repository };
    const registry = this.endpoint.registry;
    this.transport = new RegistryTransport({
      registry,
      lookupCredentials: () => credentialsFromDockerConfig(registry),
      ...transportOptions,
    });
    this.pullScope = `repository:${this.endpoint.repository}:pull`;
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private blobPath(digest: Digest): string {
    return `/v2/${this.endpoint.repository}/blobs/${digest}`;
  }

  /**
   * A manifest, verified. `onChunk` sees its bytes as they arrive, before they are verified (to
   * start work on what they will hold: nothing it makes may be used unchecked).
   */
  async getManifest(target: string, onChunk?: (chunk: Buffer) => void): Promise<FetchedManifest> {
    const res = await this.transport.request({
      path: `/v2/${this.endpoint.repository}/manifests/${target}`,
      scopes: [this.pullScope],
      headers: { accept: MANIFEST_ACCEPT },
    });
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES, 'manifest', onChunk);
    const isDigest = target.includes(':');
    const hasher = createDigester(isDigest ? parseDigest(target) : ('sha256:' as Digest));
    const actualHex = hasher.update(bytes).digest('hex');
    let digest: Digest;
    if (isDigest) {
      digest = parseDigest(target);
      checkDigest(digest, actualHex, 'manifest');
    } else {
      digest = parseDigest(`sha256:${actualHex}`);
      const claimed = headerValue(res.headers, 'docker-content-digest');
      if (claimed && claimed.startsWith('sha256:') && claimed !== digest) {
        throw new KrgoError('DIGEST_MISMATCH', `manifest for ${target} hashes to ${digest} but the registry says ${claimed}`);
      }
    }
    return { digest, bytes, parsed: parseManifest(bytes, headerValue(res.headers, 'content-type')) };
  }

  /** Resolves a reference to one image manifest (choosing a platform from an index) and its config. */
  async resolveImage(platform: Platform, requested = false): Promise<ResolvedImage> {
    return this.withConfig(await this.resolveManifest(platform, requested));
  }

  /** The image manifest for a platform, without its config (so callers can fetch more alongside). */
  async resolveManifest(platform: Platform, requested = false): Promise<Omit<ResolvedImage, 'config' | 'configBytes'>> {
    const top = await this.getManifest(referenceTarget(this.reference));
    let chosen = top;
    let indexDigest: Digest | undefined;
    let chosenPlatform: Platform | undefined;
    if (top.parsed.kind === 'index') {
      const entry = selectPlatform(top.parsed.manifests, platform);
      indexDigest = top.digest;
      chosenPlatform = entry.platform;
      chosen = await this.getManifest(entry.digest);
      if (chosen.parsed.kind !== 'manifest') {
        throw new KrgoError('UNSUPPORTED_MANIFEST', `the index entry for ${formatPlatform(platform)} is itself an index; nested indexes are not supported`);
      }
    }
    return {
      reference: this.reference,
      manifest: chosen.parsed as ImageManifest,
      manifestBytes: chosen.bytes,
      manifestDigest: chosen.digest,
      ...(indexDigest ? { indexDigest } : {}),
      ...(chosenPlatform ? { platform: chosenPlatform } : {}),
      ...(requested ? { requestedPlatform: platform } : {}),
    };
  }

  /** The image with its config: `embedded` (base64, as an index artifact carries it) is taken if it hashes to the config's digest, else fetched. */
  async withConfig(resolved: Omit<ResolvedImage, 'config' | 'configBytes'>, embedded?: string): Promise<ResolvedImage> {
    const manifest = resolved.manifest;
    const configBytes = await this.getBlobBytes(embedded ? { ...manifest.config, data: embedded } : manifest.config, MAX_CONFIG_BYTES);
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    } catch {
      throw new KrgoError('UNSUPPORTED_MANIFEST', `image config ${manifest.config.digest} of ${formatReference(this.reference)} is not JSON`);
    }
    // A single-platform image is what it is: asked for another platform, say so (as docker does).
    const wanted = resolved.requestedPlatform;
    if (wanted && !resolved.indexDigest && typeof config.os === 'string' && typeof config.architecture === 'string') {
      const variant = (config as { variant?: unknown }).variant;
      const have = { os: config.os, architecture: config.architecture, ...(typeof variant === 'string' ? { variant } : {}) };
      if (!platformMatches(have, wanted)) throw new KrgoError('NO_MATCHING_PLATFORM', `${formatReference(this.reference)} is an image for ${formatPlatform(have)} only, not ${formatPlatform(wanted)}`);
    }
    return { ...resolved, config, configBytes };
  }

  /** A small blob, read whole and verified: the descriptor's embedded content when it has it, without a request. */
  async getBlobBytes(desc: Descriptor, limit: number): Promise<Buffer> {
    if (desc.size > limit) throw new KrgoError('REGISTRY_ERROR', `blob ${desc.digest} is ${desc.size} bytes, more than the ${limit} allowed here`);
    const embedded = embeddedContent(desc);
    if (embedded) return embedded;
    const res = await this.transport.request({ path: this.blobPath(desc.digest), scopes: [this.pullScope] });
    const bytes = await readLimited(res, limit, `blob ${desc.digest}`);
    if (bytes.length !== desc.size) throw new KrgoError('SIZE_MISMATCH', `blob ${desc.digest} has ${bytes.length} bytes, expected ${desc.size}`);
    checkDigest(desc.digest, createDigester(desc.digest).update(bytes).digest('hex'), 'blob');
    return bytes;
  }

  /**
   * Opens a blob at `offset` (a Range request when offset > 0) and yields its bytes from there:
   * when a registry answers a Range request with 200, the leading bytes are dropped here.
   */
  async openBlob(digest: Digest, offset: number, end?: number): Promise<{ chunks: AsyncGenerator<Buffer>; cancel(): void }> {
    const { res, skip } = await this.openBlobResponse(digest, offset, end);
    async function* chunks(): AsyncGenerator<Buffer> {
      let toSkip = skip;
      for await (const raw of watchTransferRate(res.body, () => res.body.destroy(), `blob ${digest.slice(0, 19)}`)) {
        let chunk = raw;
        if (toSkip > 0) {
          const drop = Math.min(toSkip, chunk.length);
          chunk = chunk.subarray(drop);
          toSkip -= drop;
        }
        if (chunk.length > 0) yield chunk;
      }
    }
    return { chunks: chunks(), cancel: () => res.body.destroy() };
  }

  private async openBlobResponse(digest: Digest, offset: number, end?: number): Promise<{ res: RegistryResponse; skip: number }> {
    const ranged = offset > 0 || end !== undefined;
    const res = await this.transport.request({
      path: this.blobPath(digest),
      scopes: [this.pullScope],
      headers: ranged ? { range: `bytes=${offset}-${end !== undefined ? end - 1 : ''}` } : {},
      expect: ranged ? [200, 206] : [200],
    });
    if (res.status === 206) {
      const range = headerValue(res.headers, 'content-range');
      const start = range ? Number(/bytes\s+(\d+)-/.exec(range)?.[1]) : NaN;
      if (start !== offset) {
        await res.body.dump();
        throw new KrgoError('REGISTRY_ERROR', `registry answered a range request for byte ${offset} of ${digest} with ${range ?? 'no Content-Range'}`);
      }
      return { res, skip: 0 };
    }
    return { res, skip: offset };
  }

  /**
   * Several ranges of a blob in one request (`Range: bytes=a-b,c-d,…`, answered as
   * multipart/byteranges, RFC 9110 §14.6): one round trip for what would be many. `sink(k, chunk)`
   * gets range k's bytes in order as they arrive. A server may answer with one range (the first,
   * or all coalesced) or, ignoring Range, the whole blob (not read: it may be a large layer); what
   * the answer did not carry is left to the caller, told by `served`, and `multipart` says
   * whether the server answered in parts at all (gcr.io once refused such requests with 400:
   * containerd/stargz-snapshotter#81, whose fetcher falls back to single ranges the same way).
   */
  async readRanges(digest: Digest, ranges: readonly ByteRange[], sink: (k: number, chunk: Buffer) => void, options: { inOrder?: boolean } = {}): Promise<{ served: boolean[]; multipart: boolean }> {
    const got = ranges.map(() => 0);
    const served = () => ranges.map((r, k) => got[k] === r.end - r.start);
    const res = await this.transport.request({
      path: this.blobPath(digest),
      scopes: [this.pullScope],
      headers: { range: rangesHeader(ranges) },
      expect: [200, 206, 400, 416],
      ...(options.inOrder ? { inOrder: true } : {}),
    });
    const boundary = byteRangesBoundary(headerValue(res.headers, 'content-type'));
    const single = boundary === undefined ? parseContentRange(headerValue(res.headers, 'content-range')) : undefined;
    if (res.status !== 206 || (!boundary && !single)) {
      // A whole blob is not read to its end (it may be a large layer); a refusal is short.
      if (res.status === 200) {
        res.body.on('error', () => undefined);
        res.body.destroy();
      } else await res.body.dump();
      return { served: served(), multipart: false };
    }
    let part = single;
    let at = single?.start ?? 0;
    // Bytes [at, at+chunk.length) of the blob: each wanted range inside the current part takes its share, in order.
    const feed = (chunk: Buffer) => {
      const p = part!;
      ranges.forEach((r, k) => {
        if (r.start < p.start || r.end > p.end) return;
        const from = r.start + got[k]!;
        if (from < at || from >= at + chunk.length || from >= r.end) return;
        const piece = chunk.subarray(from - at, Math.min(r.end, at + chunk.length) - at);
        got[k]! += piece.length;
        sink(k, piece);
      });
      at += chunk.length;
    };
    const parts = boundary
      ? new ByteRangePartsReader(
          boundary,
          (range) => {
            part = range;
            at = range.start;
          },
          feed,
        )
      : undefined;
    res.body.on('error', () => undefined);
    // Read to its end once all is in (its closing boundary): a reset would also fail the
    // requests pipelined behind it. Not a coalescing server's long tail past the last range.
    let tail = 0;
    for await (const chunk of watchTransferRate(res.body, () => res.body.destroy(), `blob ${digest.slice(0, 19)}`)) {
      if (parts?.finished || !served().includes(false)) {
        tail += (chunk as Buffer).length;
        // Leaving the loop ends the body (and its connection).
        if (tail > MAX_TAIL_READ) break;
        continue;
      }
      if (!parts) feed(chunk as Buffer);
      else {
        try {
          parts.push(chunk as Buffer);
        } catch {
          // Parts this reader cannot frame: what came whole is kept, the server is asked one range at a time.
          res.body.destroy();
          return { served: served(), multipart: false };
        }
      }
    }
    return { served: served(), multipart: parts !== undefined };
  }

  /** Reads bytes [offset, offset+length) of a blob; handles registries that ignore Range. */
  async readRange(digest: Digest, offset: number, length: number, onProgress?: (data: Buffer, filled: number) => void): Promise<Buffer> {
    const blob = await this.openBlob(digest, offset, offset + length);
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    for await (const chunk of blob.chunks) {
      const take = Math.min(chunk.length, length - filled);
      chunk.copy(out, filled, 0, take);
      filled += take;
      onProgress?.(out, filled);
      if (filled === length) {
        blob.cancel();
        break;
      }
    }
    if (filled !== length) throw new KrgoError('SIZE_MISMATCH', `range ${offset}+${length} of ${digest} ended after ${filled} bytes`);
    return out;
  }
}
