import { KrgoError } from '../errors.js';
import { appendLayer } from '../image/append-layer.js';
import { diffTrees } from '../changes/layer-diff.js';
import { branchName, commitBlobDirFor, LayerRepo, type LayerBranch } from './layer-state.js';
import { recordTree } from '../changes/tree-record.js';
import { writeLayer, type WrittenLayer } from '../changes/layer-writer.js';

export interface CommitOptions {
  rootfs: string;
  message: string;
  warn: (message: string) => void;
}

export interface CommitResult extends WrittenLayer {
  branch: string;
  index: number;
  /** Content changes git saw (added, modified, deleted, type-changed paths). */
  contentChanges: number;
}

/**
 * `krgo commit`: every change on the top layer branch (content as git sees it, metadata as the
 * branch's record has it) becomes a new gzip layer, a new branch `layer_<n+1>_<hex>` and a new
 * config and manifest, all recorded in git for `krgo push`.
 */
export async function commitChanges(options: CommitOptions): Promise<CommitResult> {
  const layers = await LayerRepo.open(options.rootfs);
  await layers.assertUnchangedBranches();
  const { repo, rootfs } = layers;
  const top = layers.top;

  await repo.stageAll();
  const [content, before, after] = await Promise.all([repo.stagedChanges(top.commit), layers.record(top.index), recordTree(rootfs)]);
  const diff = diffTrees(before, after, new Set(content.filter((c) => c.status !== 'D').map((c) => c.path)));
  for (const path of diff.skipped) options.warn(`left out ${JSON.stringify(path)}: sockets cannot be stored in a layer`);
  if (diff.changes.length === 0) throw new KrgoError('NOTHING_TO_COMMIT', `nothing to commit: ${rootfs} is as ${top.branch} left it`);

  const layer = await writeLayer(rootfs, diff.changes, commitBlobDirFor(rootfs));

  const { manifest: manifestBytes, config: configBytes, descriptor } = appendLayer(layers.manifest, layers.config, layer, options.message);

  const index = top.index + 1;
  const branch = branchName(index, layer.digest);
  await repo.startBranch(branch);
  const commit = await repo.commit(`${options.message}\n\nlayer ${index}: ${layer.digest}\ndiff_id ${layer.diffId}\n`);
  const added: LayerBranch = { index, branch, commit, descriptor, diffId: layer.diffId, origin: 'commit' };
  const state = { ...layers.state, layers: [...layers.state.layers, added] };
  await LayerRepo.save(repo, state, manifestBytes, configBytes, new Map([[index, after]]), `commit ${branch}`);
  return { ...layer, branch, index, contentChanges: content.length };
}
