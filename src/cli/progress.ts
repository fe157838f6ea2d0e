import type { PullEvents } from '../pull/pull-events.js';
import { formatBytes, formatDuration } from '../util/format.js';

interface LayerLine {
  id: string;
  state: 'Waiting' | 'Downloading' | 'Downloaded' | 'Already exists' | 'Extracting' | 'Pull complete';
  bytes: number;
  total: number;
  startedAt: number;
  doneAt?: number;
  applied: boolean;
  downloaded: boolean;
  /** Complete in the cache before this pull: nothing downloaded. */
  cached: boolean;
}

/** What mount, materialize and index say when a layer has no index anywhere and its one pass starts. */
export function indexingLine(layer: number, digest: string, size: number): string {
  return `layer ${layer + 1} ${digest.slice(7, 19)}: indexing ${formatBytes(size)} (one pass over the layer; the index is kept for next time)`;
}

/** Cut to the terminal's width: a line that wraps would make the redraw climb too few lines. */
export function fit(text: string, columns: number | undefined): string {
  const width = columns && columns > 1 ? columns - 1 : Infinity;
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}

function rate(line: LayerLine, now: number): string {
  const seconds = ((line.doneAt ?? now) - line.startedAt) / 1000;
  return seconds > 0 ? `${formatBytes(line.bytes / seconds)}/s` : '';
}

/**
 * Pull progress for people: on a TTY one live line per layer (as `docker pull` shows),
 * otherwise a plain line per event worth keeping in a log; nothing at all when quiet.
 */
export function progressReporter(stream: NodeJS.WriteStream, mode: 'tty' | 'plain' | 'quiet', options: { gitDir?: string } = {}): PullEvents & { finish(): void } {
  const lines: LayerLine[] = [];
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const started = Date.now();

  const render = () => {
    if (mode !== 'tty') return;
    const now = Date.now();
    let out = drawn ? `\x1b[${drawn}A` : '';
    for (const line of lines) {
      // Layers are applied as they stream in: while one is extracted it may still be downloading.
      const receiving = !line.downloaded && (line.state === 'Downloading' || line.state === 'Extracting');
      const detail = receiving ? `${formatBytes(line.bytes)}/${formatBytes(line.total)}  ${rate(line, now)}` : line.state === 'Waiting' ? '' : formatBytes(line.total);
      out += `\x1b[2K${fit(`${line.id}: ${line.state.padEnd(14)} ${detail}`, stream.columns)}\n`;
    }
    drawn = lines.length;
    stream.write(out);
  };
  const plain = (text: string) => {
    if (mode === 'plain') stream.write(`${text}\n`);
  };

  return {
    resolved(info) {
      const now = Date.now();
      for (const layer of info.layers) {
        lines.push({ id: layer.digest.slice(7, 19), state: 'Waiting', bytes: 0, total: layer.size, startedAt: now, applied: false, downloaded: false, cached: false });
      }
      if (mode !== 'quiet') stream.write(`${fit(`Pulling ${info.reference} (${info.manifestDigest}), ${info.layers.length} layers`, mode === 'tty' ? stream.columns : undefined)}\n`);
      if (mode !== 'quiet' && options.gitDir) stream.write(`${fit(`and one git branch per layer (repository: ${options.gitDir})`, mode === 'tty' ? stream.columns : undefined)}\n`);
      if (mode === 'tty') timer = setInterval(render, 150);
      render();
    },
    downloadProgress(layer, bytes) {
      const line = lines[layer];
      if (!line || line.downloaded) return;
      if (line.state === 'Waiting') {
        line.state = 'Downloading';
        line.startedAt = Date.now();
      }
      line.bytes = bytes;
    },
    downloadDone(layer, { cached }) {
      const line = lines[layer];
      if (!line) return;
      line.downloaded = true;
      line.cached = cached;
      line.doneAt = Date.now();
      line.bytes = line.total;
      if (!line.applied && line.state !== 'Extracting') line.state = cached ? 'Already exists' : 'Downloaded';
      if (cached) plain(`layer ${layer + 1}/${lines.length} ${line.id}: already exists (${formatBytes(line.total)} in the cache)`);
      else plain(`layer ${layer + 1}/${lines.length} ${line.id}: downloaded ${formatBytes(line.total)} in ${formatDuration(line.doneAt - line.startedAt)} (${rate(line, line.doneAt)})`);
    },
    applyStart(layer) {
      const line = lines[layer];
      if (!line) return;
      if (line.state === 'Waiting') line.startedAt = Date.now();
      line.state = 'Extracting';
    },
    applyDone(layer, stats) {
      const line = lines[layer];
      if (!line) return;
      line.applied = true;
      line.state = line.cached ? 'Already exists' : 'Pull complete';
      plain(`layer ${layer + 1}/${lines.length} ${line.id}: applied ${stats.entries} entries${stats.skipped ? `, ${stats.skipped} skipped` : ''}`);
      render();
    },
    warn(message) {
      if (mode === 'tty' && drawn) {
        stream.write(`\x1b[${drawn}A\x1b[J`);
        drawn = 0;
      }
      process.stderr.write(`warning: ${message}\n`);
      render();
    },
    finish() {
      if (timer) clearInterval(timer);
      render();
      if (mode !== 'quiet') stream.write(`Done in ${formatDuration(Date.now() - started)}\n`);
    },
  };
}
