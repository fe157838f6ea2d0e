import type { ImageConfigFile } from '../image/runtime-spec.js';
import type { ImageConfig } from '../image/manifest.js';
import { createHash } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { writeFileAtomically } from '../util/atomic-write.js';
import { KrgoError } from '../errors.js';
import { formatReference, type ImageReference } from '../registry/reference.js';
import type { Inode, MergedTree } from '../vfs/merged-tree.js';
import type { FuseMountOptions, MountedFs } from '../fuse/fuse-adapter.js';
import { deferred } from '../util/deferred.js';
import { tracePhase } from '../util/phase-trace.js';
import { traceFile } from '../util/trace-file.js';
import { abortable } from '../util/abortable.js';
import { AccessRecorder, encodeProfile, planProfile, type AccessProfile } from '../vfs/access-profile.js';
import { prepareImage, storedProfile, type IndexEvents, type IndexSource, type PreparedImage } from '../remote/prepare-image.js';
import type { ImageSource } from '../registry/image-source.js';
import type { RegistryClient } from '../registry/client.js';
import { mountLogPath, processStartTime, removeDeadMountRecords, removeStatus, writeStatus, type MountStatus } from './mount-status.js';
import { sweepCacheGarbage } from '../util/cache-garbage.js';
import { announceMount, withdrawMount } from './mount-registry.js';
import { fusermountUnmount, isKrgoMount, isMounted, mountAt } from './mount-table.js';
import { mountOverlay, overlayDirs, unmountOverlay, type OverlayDirs } from './overlay.js';
import { processesRootedIn } from '../hostfs/rooted-processes.js';
import { RegistryRangeSource } from '../blob/range-source.js';
import { plannedRanges } from '../index/profile-fetches.js';
import type { TreeProcesses } from '../vfs/exec-watch.js';

export interface MountOptions extends ImageSource {
  mountpoint: string;
  /** Bytes of decompressed spans kept in memory. */
  memoryCacheBytes?: number;
  /** Bytes of decompressed spans kept on disk, across mounts. */
  diskCacheBytes?: number;
  /** Fetch the image's command and its libraries as soon as the mount is ready. */
  prefetchCommand?: boolean;
  /** Replay this access profile instead of the one stored with the indexes in the registry. */
  profile?: AccessProfile;
  /** false: fetch nothing ahead from an access profile. */
  prefetch?: boolean;
  /** Write what this mount read (an access profile) to this file when it stops. */
  recordProfile?: string;
  /** Writable: an overlayfs over the lazy tree, with this upper directory (else one kept under the cache). */
  writable?: { upper?: string };
  /** Called when the mount disappears from under us (umount, fusermount -u by someone else). */
  onLost?: () => void;
  /** Cancels a mount not yet ready: it fails with INTERRUPTED and leaves nothing mounted. */
  signal?: AbortSignal;
  events?: IndexEvents;
}

export interface MountHandle {
  status(): MountStatus;
  tree: MergedTree;
  stop(): Promise<void>;
}

async function assertMountpoint(mountpoint: string): Promise<void> {
  const info = await stat(mountpoint).catch(() => undefined);
  if (!info?.isDirectory()) throw new KrgoError('USAGE', `mountpoint ${mountpoint} is not a directory`);
  const there = mountAt(mountpoint);
  if (there) {
    throw new KrgoError(
      'TARGET_EXISTS',
      isKrgoMount(there) ? `${mountpoint} is already a krgo mount (${there.source}); run krgo umount ${mountpoint} first` : `${mountpoint} is already a mount point (${there.fstype}); choose another directory`,
    );
  }
  if ((await readdir(mountpoint)).length > 0) throw new KrgoError('TARGET_EXISTS', `mountpoint ${mountpoint} is not empty`);
}

/**
 * Mounts an image lazily: indexes from the cache (or one pass per layer), the merged tree in
 * memory, file bytes fetched with Range requests on first read.
 */
export async function mountImage(options: MountOptions): Promise<MountHandle> {
  const started = Date.now();
  const mountpoint = resolve(options.mountpoint);
  const warn = (message: string) => options.events?.warn?.(message);
  await assertMountpoint(mountpoint);
  tracePhase('mountpoint checked');
  const cancelled = () => new KrgoError('INTERRUPTED', `interrupted: the mount of ${mountpoint} was cancelled before it was ready; nothing is left mounted`);
  const unlessCancelled = <T>(work: Promise<T>) => abortable(work, options.signal, cancelled);
  // What serves the mount loads while the registry's first requests are on the wire: once they
  // are sent (loaded before, its ~10 ms of CPU would hold them back).
  const loadServing = () => Promise.all([import('../remote/lazy-image.js'), import('../fuse/fuse-adapter.js'), import('../vfs/library-prefetch.js'), import('../vfs/python-prefetch.js'), import('../vfs/perl-prefetch.js'), import('../vfs/header-prefetch.js'), import('../vfs/directory-scan.js')]);
  let serving: ReturnType<typeof loadServing> | undefined;
  const servingLoaded = () => (serving ??= loadServing());
  const onAsked = () =>
    setImmediate(() => {
      void servingLoaded().catch(() => undefined);
      // Loads node:crypto too (the CLI bundle loads it at first use: scripts/bundle-cli.mjs): the
      // manifest's digest needs it the moment the manifest is in.
      createHash('sha256');
    });
  const sources: IndexSource[] = [];
  const indexBytes: number[] = [];
  // Read-only, every index cached or on its way: the kernel mount is made while they come (its
  // calls wait for the tree). A layer to scan first (seconds) mounts afterwards, as does a
  // writable mount (its lower tree's place is known once the image is: overlay.ts).
  const pendingTree = deferred<MergedTree>();
  pendingTree.promise.catch(() => undefined);
  let serve: Pick<FuseMountOptions, 'firstRead' | 'readFile'> | undefined;
  const fuseOptions = (reference: ImageReference): FuseMountOptions => ({
    fsname: `krgo:${formatReference(reference)}`,
    log: warn,
    firstRead: (inode, path) => serve!.firstRead!(inode, path),
    readFile: (inode, offset, length, path) => serve!.readFile(inode, offset, length, path),
  });
  let early: Promise<MountedFs> | undefined;
  const mountEarly = (reference: ImageReference) => {
    // Work a cancelled mount left running must not mount anything after its clean-up.
    if (options.writable || early || options.signal?.aborted) return;
    tracePhase('early kernel mount asked');
    early = servingLoaded().then(([, { mountTree }]) => mountTree(mountpoint, pendingTree.promise, fuseOptions(reference)));
    early.catch(() => undefined);
  };
  let mounted: MountedFs | undefined;
  let prepared: PreparedImage;
  // The registry's profile is replayed unless prefetching is off or a profile file replaces it.
  const replaysStored = options.prefetch !== false && !options.profile;
  // Made as soon as the profile is read, with what it plans to fetch on its way: its replay,
  // planned once the indexes are decoded, then finds those bytes coming.
  let plannedSource: RegistryRangeSource | undefined;
  const onProfile = (profile: AccessProfile, client: RegistryClient, blobSizes: ReadonlyMap<string, number>) => {
    if (!profile.fetches || options.signal?.aborted) return;
    plannedSource = new RegistryRangeSource(client);
    plannedSource.prefetch(plannedRanges(profile.fetches, blobSizes));
  };
  try {
    prepared = await unlessCancelled(prepareImage(
      options,
      {
        ...options.events,
        indexesComing: mountEarly,
        layerIndexed: (layer, source, index, bytes) => {
          sources[layer] = source;
          indexBytes[layer] = bytes;
          options.events?.layerIndexed?.(layer, source, index, bytes);
        },
      },
      { replaysProfile: replaysStored, uncachedIsFine: true, onAsked, ...(replaysStored ? { onProfile } : {}) },
    ));
  } catch (err) {
    pendingTree.reject(err);
    await early?.then((fs) => fs.unmount()).catch(() => undefined);
    throw err;
  }
  const { client, image } = prepared;
  let overlay: OverlayDirs | undefined;
  let overlayUp = false;
  try {
    if (options.writable) {
      overlay = await overlayDirs(options.cacheDir, mountpoint, options.writable.upper, {
        reference: formatReference(image.reference),
        manifestDigest: image.manifestDigest,
        manifest: image.manifestBytes,
        config: image.configBytes,
      });
      // A lower tree left by a killed mount process (its FUSE mount dead) is ours to clear.
      if (isMounted(overlay.lower)) await fusermountUnmount(overlay.lower, true);
    }
    const fuseMountpoint = overlay ? overlay.lower : mountpoint;
    const [{ openLazyImage }, { mountTree }, { LibraryPrefetcher }, { PythonPrefetcher }, { PerlPrefetcher }, { HeaderPrefetcher }, { DirectoryScans }] = await unlessCancelled(servingLoaded());
    const replaying = options.prefetch !== false ? (options.profile ?? prepared.profile) : undefined;
    const lazy = await unlessCancelled(openLazyImage(prepared, { ...options, warn, ...(replaying ? { profile: replaying } : {}), ...(plannedSource ? { source: plannedSource } : {}) }));
    const { tree, reader: imageReader, layers, source: rangeSource, flush: flushSpans, busy: servingReads } = lazy;
    const libraries = new LibraryPrefetcher(tree, imageReader);
    const processes: TreeProcesses = processesRootedIn(mountpoint);
    // Modules found ahead: fetched as one batch, and the libraries of extensions among them looked at.
    const fetchModules = (inodes: Inode[]) => {
      void imageReader.prefetchFiles(inodes);
      for (const inode of inodes) libraries.opened(inode);
    };
    const readBytes = (inode: Inode, offset: number, length: number) => imageReader.read(inode, offset, length);
    const python = new PythonPrefetcher(tree, readBytes, fetchModules, processes);
    const perl = new PerlPrefetcher(tree, fetchModules, processes);
    const headers = new HeaderPrefetcher(tree, readBytes, (inodes) => void imageReader.prefetchFiles(inodes));
    const scans = new DirectoryScans(tree, (reads) => void imageReader.prefetchReads(reads));
    let stopping: Promise<void> | undefined;
    let prefetch: { files: number; missing: number; done: boolean } | undefined;
    /** Files a replayed profile fetches as recorded: their first read prefetches nothing more (the profile knows better). */
    const planned = new Set<number>();
    const replay = (profile: AccessProfile) => {
      // Its windows first (openLazyImage took those of the profile it was given): they change where the replay's fetches start (and what they cost).
      if (profile.seekWindows && profile !== replaying) for (const layer of new Set(layers)) layer.addProfileWindows(profile.seekWindows);
      const plan = planProfile(tree, profile);
      for (const read of plan.reads) planned.add(read.inode.ino);
      const state = { files: profile.files.length, missing: plan.missing, done: false };
      prefetch = state;
      if (plan.missing) warn(`${plan.missing} of the ${profile.files.length} files of the access profile are not files in this image`);
      // What the early fetches placed is in flight already: only what they missed is fetched here.
      void Promise.all([profile === replaying ? lazy.profileFetched : undefined, imageReader.prefetchReads(plan.reads)]).finally(() => (state.done = true));
    };
    if (options.prefetch !== false) {
      // Started before the FUSE mount is up: its requests are on their way while the kernel mounts.
      if (replaying) replay(replaying);
      else if (!prepared.artifactRead) {
        // Every index came from the cache: the registry's profile is looked up without holding the mount up.
        storedProfile(prepared, warn, { replays: true })
          .then((found) => {
            if (found && !stopping) replay(found);
          })
          .catch(() => undefined);
      }
    }
    const recorder = options.recordProfile ? new AccessRecorder() : undefined;
    const pidStartTime = processStartTime(process.pid);
    const imageConfig = imageConfigOf(image.config);
    const status = (): MountStatus => ({
      pid: process.pid,
      ...(pidStartTime !== undefined ? { pidStartTime } : {}),
      reference: formatReference(image.reference),
      manifestDigest: image.manifestDigest,
      mountpoint,
      startedAt: new Date(started).toISOString(),
      ...(readyAt ? { readyAt: new Date(readyAt).toISOString(), readyMs: readyAt - started } : {}),
      requests: rangeSource.requests,
      imageConfig,
      ...(overlay ? { writable: { upper: overlay.upper, lower: overlay.lower, state: overlay.state } } : {}),
      ...(prefetch ? { prefetch: { ...prefetch } } : {}),
      layers: image.manifest.layers.map((l, i) => ({
        digest: l.digest,
        size: l.size,
        fetched: rangeSource.fetched.get(l.digest) ?? 0,
        indexSource: sources[i] ?? 'built',
        indexBytes: indexBytes[i] ?? 0,
      })),
    });
    let readyAt: number | undefined;
    /** KRGO_TRACE_READS=FILE: one line per file's first read (ms since start, path, size), beside KRGO_TRACE_RANGES' requests. */
    const readTrace = traceFile('KRGO_TRACE_READS');
    serve = {
      firstRead: (inode, path) => {
        readTrace?.(`${performance.now().toFixed(0)} ${path} ${inode.size}`);
        if (planned.has(inode.ino)) return;
        // The read that follows waits on the file's head: the whole-file fetch goes out at once.
        imageReader.prefetch(inode, false);
        // A file read as part of a scan (a directory's or a walk's files, in order) is being read
        // through, not run or loaded: nothing is fetched for its libraries, imports or includes.
        if (scans.firstRead(inode, path)) return;
        libraries.opened(inode);
        python.opened(inode, path);
        perl.opened(inode, path);
        headers.opened(inode, path);
      },
      readFile: (inode, offset, length, path) => {
        recorder?.read(path, inode, offset, length);
        servingReads();
        // A file a replayed profile planned was fetched as recorded: no read-ahead past it.
        const parts = imageReader.readParts(inode, offset, length, !planned.has(inode.ino));
        if (!readTrace) return parts;
        const asked = performance.now();
        // The reads that waited (on the registry, or on inflating): when, how long, what.
        return parts.then((got) => {
          const waited = performance.now() - asked;
          if (waited >= 2) readTrace(`${asked.toFixed(0)} waited ${waited.toFixed(0)} ms ${path} ${offset}+${length}`);
          return got;
        });
      },
    };
    pendingTree.resolve(tree);
    const fuse = await (early ?? mountTree(fuseMountpoint, tree, fuseOptions(image.reference)));
    mounted = fuse;
    tracePhase('kernel mount up');
    if (options.signal?.aborted) throw cancelled();
    if (overlay) {
      await mountOverlay(mountpoint, overlay, formatReference(image.reference));
      overlayUp = true;
    }
    readyAt = Date.now();
    if (options.prefetchCommand) libraries.command(image.config.config as Parameters<typeof libraries.command>[0]);
    let lastWritten = '';
    const publish = async () => {
      const current = status();
      const text = JSON.stringify(current);
      if (text === lastWritten) return;
      lastWritten = text;
      await writeStatus(options.cacheDir, current).catch(() => undefined);
    };
    // Announced alongside the first status (krgo mounts and status find it), not before it.
    const announced = announceMount({ mountpoint, cacheDir: resolve(options.cacheDir), pid: process.pid }).catch((err: unknown) => warn(`could not announce the mount: ${(err as Error).message}`));
    await Promise.all([publish(), announced]);
    // What failed runs left in the cache goes, after ready, without holding the mount up.
    void sweepCacheGarbage(options.cacheDir)
      .then(() => removeDeadMountRecords(options.cacheDir, isMounted))
      .catch(() => undefined);
    const timer = setInterval(() => {
      if (!stopping && !isMounted(mountpoint)) {
        clearInterval(timer);
        options.onLost?.();
        return;
      }
      void publish();
    }, 1000);
    return {
      status,
      tree,
      stop: () =>
        (stopping ??= (async () => {
          clearInterval(timer);
          try {
            // The overlay first (lazily if a program still holds it: this process is ending), then its lower tree.
            if (overlayUp && isMounted(mountpoint) && (await unmountOverlay(mountpoint)) === 'busy') await unmountOverlay(mountpoint, true);
            await fuse.unmount();
          } finally {
            // Written even when the unmount failed (the mount was taken away from outside).
            if (recorder && options.recordProfile) {
              await writeFileAtomically(resolve(options.recordProfile), encodeProfile(recorder.profile())).catch((err: unknown) => warn(`could not write the access profile ${options.recordProfile}: ${(err as Error).message}`));
            }
            await flushSpans().catch(() => undefined);
            await removeStatus(options.cacheDir, mountpoint);
            await withdrawMount(mountpoint);
            // The log of a `mount -d` background process is of no use once it unmounted cleanly.
            await rm(mountLogPath(options.cacheDir, mountpoint), { force: true });
            await client.close();
          }
        })()),
    };
  } catch (err) {
    // Nothing of a failed mount stays behind: the FUSE mount, if it came up, goes with it.
    pendingTree.reject(err);
    if (overlayUp) await unmountOverlay(mountpoint, true).catch(() => undefined);
    await (mounted ?? (await early?.catch(() => undefined)))?.unmount().catch(() => undefined);
    await client.close();
    throw err;
  }
}

/** What a runtime configuration is made from (krgo bundle): the config without history and layer list. */
function imageConfigOf(config: ImageConfig): ImageConfigFile {
  const { history: _history, rootfs: _rootfs, ...rest } = config;
  return rest as ImageConfigFile;
}
