import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KrgoError } from '../errors.js';
import { digestHex, parseDigest, type Digest } from '../digest.js';
import type { Descriptor } from '../image/manifest.js';
import { gitDirFor, metadataDirFor } from '../hostfs/rootfs-paths.js';
import { GitRepo } from './git-repo.js';
import { decodeTreeRecord, encodeTreeRecord, type TreeRecord } from '../changes/tree-record.js';

/** One layer branch as krgo wrote it. */
export interface LayerBranch {
  index: number;
  branch: string;
  /** The commit krgo made; a branch found elsewhere was changed behind krgo's back. */
  commit: string;
  descriptor: Pick<Descriptor, 'mediaType' | 'digest' | 'size'>;
  diffId: Digest;
  /** `source`: a layer of the pulled image; `commit`: made by `krgo commit`, its blob kept locally. */
  origin: 'source' | 'commit';
}

/** What `krgo push` needs besides the branches: where the image came from, its current manifest and config. */
export interface LayerRepoState {
  version: 1;
  /** The reference pulled from (unchanged layers are mounted or copied from there). */
  source: string;
  sourceManifestDigest: Digest;
  layers: LayerBranch[];
}

export const STATE_VERSION = 1;

/** `layer_<index>_<digest hex>`: ordered by the number, never by name. */
export function branchName(index: number, digest: Digest): string {
  return `layer_${index}_${digestHex(digest)}`;
}

/** Where `krgo commit` keeps the layers it makes until they are pushed. */
export function commitBlobDirFor(rootfs: string): string {
  return join(metadataDirFor(resolve(rootfs)), 'blobs', 'sha256');
}

const recordFile = (index: number) => `records/${String(index).padStart(4, '0')}.jsonl`;

/** The state of a layer repository, read from and written to its state ref. */
export class LayerRepo {
  private constructor(
    readonly repo: GitRepo,
    readonly rootfs: string,
    readonly state: LayerRepoState,
    readonly manifest: Buffer,
    readonly config: Buffer,
  ) {}

  /** Opens ROOTFS as written by `pull -g` or `materialize -g`; a clear error for anything else. */
  static async open(rootfsPath: string): Promise<LayerRepo> {
    const rootfs = resolve(rootfsPath);
    const gitDir = gitDirFor(rootfs);
    if (!(await stat(rootfs).catch(() => undefined))?.isDirectory()) throw new KrgoError('GIT_STATE', `${rootfs} is not a directory`);
    if (!(await stat(gitDir).catch(() => undefined))?.isDirectory()) {
      throw new KrgoError('GIT_STATE', `${rootfs} has no layer repository (${gitDir}); pull it with \`krgo pull -g\` or \`krgo materialize -g\` first`);
    }
    const repo = new GitRepo(gitDir, rootfs);
    const [stateText, manifest, config] = await Promise.all([repo.readState('state.json'), repo.readState('manifest.json'), repo.readState('config.json')]);
    if (!stateText || !manifest || !config) throw new KrgoError('GIT_STATE', `the layer repository ${gitDir} has no krgo state; was the pull interrupted?`);
    const state = JSON.parse(stateText) as LayerRepoState;
    if (state.version !== STATE_VERSION) throw new KrgoError('GIT_STATE', `the layer repository ${gitDir} was written by another krgo version (state ${state.version})`);
    state.layers.forEach((l) => parseDigest(l.descriptor.digest));
    return new LayerRepo(repo, rootfs, state, Buffer.from(manifest), Buffer.from(config));
  }

  get top(): LayerBranch {
    return this.state.layers[this.state.layers.length - 1]!;
  }

  async record(index: number): Promise<TreeRecord> {
    const text = await this.repo.readState(recordFile(index));
    if (text === undefined) throw new KrgoError('GIT_STATE', `no metadata record for layer ${index} in ${this.repo.gitDir}`);
    return decodeTreeRecord(text);
  }

  /**
   * Refuses to work on a repository whose layers are not as krgo left them: HEAD on another
   * branch, or a layer branch moved (an older layer changed).
   */
  async assertUnchangedBranches(): Promise<void> {
    const current = await this.repo.currentBranch();
    if (current !== this.top.branch) {
      throw new KrgoError('GIT_STATE', `HEAD is on ${current ?? 'a detached commit'}, not on the top layer ${this.top.branch}; only the top layer can take new changes (check it out first)`);
    }
    const branches = await this.repo.branchCommits();
    for (const layer of this.state.layers) {
      const commit = branches.get(layer.branch);
      if (commit !== layer.commit) {
        // Say how to put it back: a top branch's git commits can become a layer (reset --soft
        // keeps their changes in the work tree); an older branch just goes back.
        const undo =
          layer === this.top && commit
            ? `to make your git commits a layer instead, run: git -C ${this.rootfs} reset --soft ${layer.commit.slice(0, 12)} && krgo commit -r ${this.rootfs} -m MESSAGE`
            : `to put it back, run: git -C ${this.rootfs} branch -f ${layer.branch} ${layer.commit.slice(0, 12)}`;
        throw new KrgoError('GIT_STATE', `branch ${layer.branch} ${commit ? `moved to ${commit.slice(0, 12)}` : 'is gone'} (krgo wrote ${layer.commit.slice(0, 12)}); layer branches cannot be changed with git; ${undo}`);
      }
    }
  }

  /** Saves a new state with the given manifest, config and the records of new layers. */
  static async save(repo: GitRepo, state: LayerRepoState, manifest: Buffer, config: Buffer, records: Map<number, TreeRecord>, message: string): Promise<void> {
    const files: Record<string, string> = {
      'state.json': `${JSON.stringify(state, null, 2)}\n`,
      'manifest.json': manifest.toString('utf8'),
      'config.json': config.toString('utf8'),
    };
    for (const [index, record] of records) files[recordFile(index)] = encodeTreeRecord(record);
    await repo.writeState(files, message);
  }
}
