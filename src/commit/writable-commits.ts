import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KrgoError } from '../errors.js';
import type { Digest } from '../digest.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { decodeTreeRecord, encodeTreeRecord } from '../changes/tree-record.js';
import type { UpperRecord } from '../changes/upper-changes.js';
import { readBaseImage } from '../mount/overlay.js';

/** A layer `krgo commit` made from a writable mount's upper directory. */
export interface CommittedLayer {
  digest: Digest;
  diffId: Digest;
  size: number;
  message: string;
}

/**
 * What the commits of one upper directory have made: the image on top (manifest and config,
 * exact bytes), the layers added to the base, and the upper directory as the last commit saw it
 * (what the next commit diffs against). One file, replaced atomically: a commit either happened
 * or did not.
 */
export interface WritableCommits {
  baseManifestDigest: string;
  /** Where the base image came from: its layers are mounted or copied from there on push. */
  source: string;
  manifest: Buffer;
  config: Buffer;
  layers: CommittedLayer[];
  snapshot?: UpperRecord;
}

const FILE = 'commits.json';
const VERSION = 1;

export function commitBlobDir(stateDir: string): string {
  return join(stateDir, 'blobs');
}

/** The commits made so far, or the base image as mounted when there are none (or they were for another base). */
export async function loadCommits(stateDir: string): Promise<WritableCommits> {
  const base = await readBaseImage(stateDir);
  if (!base) throw new KrgoError('NOT_FOUND', `no writable mount state in ${stateDir}`);
  // A record written by a krgo before commits existed names the image only: its bytes come with the next mount.
  if (base.manifest.length === 0 || base.config.length === 0 || !base.reference) {
    throw new KrgoError('GIT_STATE', `the writable mount state in ${stateDir} predates commits; mount the image again with -w on the same mountpoint (or --upper), then commit`);
  }
  const text = await readFile(join(stateDir, FILE), 'utf8').catch(() => undefined);
  type Stored = { version: number; baseManifestDigest: string; manifest: string; config: string; layers: CommittedLayer[]; snapshot?: { records: string; identities: [string, string][] } };
  let stored: Stored | undefined;
  try {
    stored = text ? (JSON.parse(text) as Stored) : undefined;
  } catch {
    throw new KrgoError('GIT_STATE', `the commit record ${join(stateDir, FILE)} is damaged; move it away to start the commits of this mount again from its upper directory`);
  }
  if (!stored || stored.version !== VERSION || stored.baseManifestDigest !== base.manifestDigest) {
    return { baseManifestDigest: base.manifestDigest, source: base.reference, manifest: base.manifest, config: base.config, layers: [] };
  }
  return {
    baseManifestDigest: base.manifestDigest,
    source: base.reference,
    manifest: Buffer.from(stored.manifest, 'base64'),
    config: Buffer.from(stored.config, 'base64'),
    layers: stored.layers,
    ...(stored.snapshot ? { snapshot: { tree: decodeTreeRecord(stored.snapshot.records), identities: new Map(stored.snapshot.identities) } } : {}),
  };
}

export async function saveCommits(stateDir: string, commits: WritableCommits): Promise<void> {
  const record = {
    version: VERSION,
    baseManifestDigest: commits.baseManifestDigest,
    manifest: commits.manifest.toString('base64'),
    config: commits.config.toString('base64'),
    layers: commits.layers,
    ...(commits.snapshot ? { snapshot: { records: encodeTreeRecord(commits.snapshot.tree), identities: [...commits.snapshot.identities] } } : {}),
  };
  await writeFileAtomically(join(stateDir, FILE), `${JSON.stringify(record)}\n`);
}
