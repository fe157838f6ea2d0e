import { lstat, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KrgoError } from '../errors.js';
import { parseDigest } from '../digest.js';
import type { Descriptor } from '../image/manifest.js';
import type { ResolvedImage } from '../registry/client.js';
import { formatReference } from '../registry/reference.js';
import { GitRepo } from './git-repo.js';
import { setTimes, splitNanoseconds } from '../hostfs/special-files.js';
import { branchName, LayerRepo, STATE_VERSION, type LayerBranch } from './layer-state.js';
import { gitDirFor } from '../hostfs/rootfs-paths.js';
import { recordTree, type TreeRecord } from '../changes/tree-record.js';

/**
 * Writes one branch per layer while a rootfs is built layer by layer (`pull -g`,
 * `materialize -g`): after each layer, the whole tree is staged and committed on
 * `layer_<n>_<hex>`, made from the previous branch, and what git drops is recorded.
 */
export class LayerBranchWriter {
  private readonly layers: LayerBranch[] = [];
  private readonly records = new Map<number, TreeRecord>();

  private constructor(private readonly repo: GitRepo) {}

  /** A new repository for `finalRootfs`, working on `workTree` (its staging directory) meanwhile. */
  static async create(finalRootfs: string, workTree: string): Promise<LayerBranchWriter> {
    const gitDir = gitDirFor(finalRootfs);
    await rm(gitDir, { recursive: true, force: true });
    const repo = new GitRepo(gitDir, workTree);
    await repo.init(finalRootfs);
    return new LayerBranchWriter(repo);
  }

  /** Commits the work tree as it is now as the branch of layer `index`. */
  async commitLayer(index: number, layer: Descriptor, diffId: string): Promise<void> {
    const branch = branchName(index, layer.digest);
    await this.repo.stageAll();
    await this.repo.startBranch(branch);
    const commit = await this.repo.commit(`layer ${index}: ${layer.digest}\n\ndiff_id ${diffId}\nmedia type ${layer.mediaType}\nsize ${layer.size}\n`);
    this.records.set(index, await recordTree(this.repo.workTree));
    this.layers.push({
      index,
      branch,
      commit,
      descriptor: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size },
      diffId: parseDigest(diffId),
      origin: 'source',
    });
  }

  /** Records the image beside the branches; call before the tree moves to its final place. */
  async finish(image: ResolvedImage): Promise<void> {
    await linkGitDir(this.repo.workTree, this.repo.gitDir);
    const state = { version: STATE_VERSION, source: formatReference(image.reference), sourceManifestDigest: image.manifestDigest, layers: this.layers } as const;
    await LayerRepo.save(this.repo, state, image.manifestBytes, image.configBytes, this.records, `image ${formatReference(image.reference)} (${image.manifestDigest})`);
  }
}

/**
 * The 2015 habit, `cd ROOTFS && git log`: a `.git` file in the rootfs naming the repository beside
 * it (as `git worktree` writes). git never stores a `.git` path and krgo's records skip this one,
 * so it never enters a layer. An image with a /.git of its own keeps it (git --git-dir then).
 */
async function linkGitDir(workTree: string, gitDir: string): Promise<void> {
  const path = join(workTree, '.git');
  if (await lstat(path).catch(() => undefined)) return;
  // The root keeps the times its layers gave it: the pointer is not a change of the image.
  const root = await lstat(workTree, { bigint: true });
  await writeFile(path, gitDirPointer(gitDir));
  setTimes(workTree, splitNanoseconds(root.atimeNs), splitNanoseconds(root.mtimeNs));
}

/** The text of a `.git` file pointing at `gitDir`. */
export function gitDirPointer(gitDir: string): string {
  return `gitdir: ${gitDir}\n`;
}

/** The config's diff_ids, one per layer (branches record them; `commit` extends them). */
export function layerDiffIds(image: ResolvedImage): string[] {
  const ids = image.config.rootfs?.diff_ids ?? [];
  if (ids.length !== image.manifest.layers.length) {
    throw new KrgoError('UNSUPPORTED_MANIFEST', `the image config lists ${ids.length} diff_ids for ${image.manifest.layers.length} layers`);
  }
  return ids;
}
