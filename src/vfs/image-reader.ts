import type { Inode, MergedTree } from './merged-tree.js';
import type { LayerReader } from './layer-reader.js';

/** File bytes of a merged tree, from whichever layer (and format) holds them. */
export class ImageReader {
  constructor(
    private readonly tree: MergedTree,
    private readonly readers: LayerReader[],
  ) {}

  read(inode: Inode, offset: number, length: number): Promise<Buffer> {
    const plan = this.tree.readPlan(inode, offset, length);
    if (!plan) return Promise.resolve(Buffer.alloc(0));
    const reader = this.readers[plan.layer]!;
    return plan.chunks ? reader.readChunks(plan.chunks, plan.offset, plan.length) : reader.read(plan.offset, plan.length);
  }

  /** Starts fetching a whole file in the background (one request per run of spans). */
  prefetch(inode: Inode): void {
    const plan = this.tree.readPlan(inode, 0, inode.size);
    if (!plan) return;
    const reader = this.readers[plan.layer]!;
    if (plan.chunks) reader.readChunks(plan.chunks, 0, plan.length).catch(() => undefined);
    else reader.prefetch(plan.offset, plan.length);
  }
}
