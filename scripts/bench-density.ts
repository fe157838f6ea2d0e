/**
 * npm run bench:density — how dense gzip seek points should be, by replaying what the bench's
 * workloads read (the profiles `npm run bench:lazy` leaves in PROFILES_DIR) against indexes of
 * the same images built at other densities: the bytes a mount would fetch (index, seek windows,
 * compressed ranges, with the reader's rules: a file's first read fetches all of it, a fetch
 * starts at the cell's point when the cell before is cached, else at the keyed point before),
 * against what the registry has to hold (index and windows blob). No network: a model of the
 * reader, checked against the bench's measured bytes at the default density.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buildLayerIndex, type SeekDensity } from '../src/index/layer-index.js';
import { encodeIndex } from '../src/index/index-codec.js';
import type { LayerIndex } from '../src/index/index-format.js';
import { parseDigest } from '../src/digest.js';
import { resolvePath } from '../src/vfs/resolve-path.js';
import { parseProfile } from '../src/vfs/access-profile.js';
import { FIRST_READ_PREFETCH_BYTES } from '../src/vfs/image-reader.js';
import { gzipCellsOf } from '../src/vfs/formats/gzip-cells.js';
import { debianImageLayout, largeDebianImageLayout } from '../test/support/debian-image.js';
import { log } from './bench-support.js';
import { LAZY_WORKLOADS, layoutLayers, NeededBytes, PROFILES_DIR } from './lazy-workloads.js';

const DENSITIES: SeekDensity[] = [
  { grid: 16 * 1024, windowSpacing: 128 * 1024 },
  { grid: 16 * 1024, windowSpacing: 128 * 1024, sparseWindows: true },
  { grid: 16 * 1024, windowSpacing: 64 * 1024, sparseWindows: true },
  { grid: 16 * 1024, windowSpacing: 32 * 1024, sparseWindows: true },
  { grid: 16 * 1024, windowSpacing: 16 * 1024, sparseWindows: true },
];

interface Cell {
  out: number;
  outEnd: number;
  in: number;
  inEnd: number;
  windowBytes: number;
}

function cellsOf(index: LayerIndex): Cell[] {
  return gzipCellsOf(index).map((cell, i) => {
    const w = index.checkpoints[i]!.window;
    return { ...cell, windowBytes: w >= 0 ? index.windows.refs[w]!.length : -1 };
  });
}

function cellAt(cells: Cell[], offset: number): number {
  let lo = 0;
  let hi = cells.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (cells[mid]!.out <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Bytes a mount fetches for files read in this order, each read whole on its first read. */
function replay(needed: NeededBytes, layers: Cell[][], profileText: string): number {
  const cached = layers.map(() => new Set<number>());
  let bytes = 0;
  for (const file of parseProfile(profileText).files) {
    const inode = resolvePath(needed.tree, file.path);
    if (inode?.type !== 'file') continue;
    const plan = needed.tree.readPlan(inode, 0, Math.min(inode.size, FIRST_READ_PREFETCH_BYTES));
    if (!plan) continue;
    const cells = layers[plan.layer]!;
    const have = cached[plan.layer]!;
    const first = cellAt(cells, plan.offset);
    const last = cellAt(cells, plan.offset + plan.length - 1);
    for (let i = first; i <= last; i++) {
      if (have.has(i)) continue;
      let end = i;
      while (end + 1 <= last && !have.has(end + 1)) end++;
      let start = i;
      for (;;) {
        const cell = cells[start]!;
        if (cell.out === 0 || have.has(start - 1)) break;
        if (cell.windowBytes >= 0) {
          bytes += cell.windowBytes;
          break;
        }
        start--;
      }
      bytes += cells[end]!.inEnd - cells[start]!.in;
      for (let k = start; k <= end; k++) have.add(k);
      i = end;
    }
  }
  return bytes;
}

const profiles = new Map<string, string>();
for (const name of await readdir(PROFILES_DIR).catch(() => [] as string[])) profiles.set(name.replace(/\.profile$/, ''), await readFile(join(PROFILES_DIR, name), 'utf8'));
if (!profiles.size) throw new Error(`no profiles in ${PROFILES_DIR}: run npm run bench:lazy first`);
const rows: string[][] = [];
for (const image of ['base', 'large'] as const) {
  const workloads = LAZY_WORKLOADS.filter((w) => w.image === image && profiles.has(w.name));
  if (!workloads.length) continue;
  const layout = image === 'base' ? await debianImageLayout(log) : await largeDebianImageLayout(log);
  const layers = await layoutLayers(layout);
  const imageBytes = layers.reduce((a, l) => a + l.size, 0);
  const blobs = await Promise.all(layers.map((l) => readFile(join(layout, 'blobs/sha256', l.digest.slice(7)))));
  const needed = await NeededBytes.of(layout);
  for (const density of DENSITIES) {
    const indexes: LayerIndex[] = [];
    for (const [i, blob] of blobs.entries()) indexes.push(await buildLayerIndex(Readable.from([blob]), parseDigest(layers[i]!.digest), blob.length, density));
    const indexBytes = indexes.reduce((a, x) => a + encodeIndex(x).length, 0);
    const windowBytes = indexes.reduce((a, x) => a + x.windows.size, 0);
    const cells = indexes.map(cellsOf);
    const row = [`${image}: grid ${density.grid! / 1024} KiB, windows every ${density.windowSpacing! / 1024} KiB${density.sparseWindows ? ', sparse' : ''}`, `${(indexBytes / 1e6).toFixed(3)} (${((100 * indexBytes) / imageBytes).toFixed(2)}%)`, `${(windowBytes / 1e6).toFixed(1)} (${((100 * windowBytes) / imageBytes).toFixed(1)}%)`];
    for (const w of workloads) {
      const text = profiles.get(w.name)!;
      const fetched = indexBytes + replay(needed, cells, text);
      row.push(`${w.name} ${(fetched / 1e6).toFixed(2)} MB = ${(fetched / needed.of(text).compressed).toFixed(2)}×`);
    }
    rows.push(row);
    log(row.join(' | '));
  }
}
process.stdout.write(`| density | index (MB, share of image) | windows blob (MB, share) | per workload: fetched, ÷ needed |\n|---|---|---|---|\n${rows.map((r) => `| ${r[0]} | ${r[1]} | ${r[2]} | ${r.slice(3).join('; ')} |`).join('\n')}\n`);
