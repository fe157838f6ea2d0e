import type { BlobOutcome, PushEvents } from '../push/push-image.js';
import { formatBytes } from '../util/format.js';

const OUTCOME: Record<BlobOutcome, string> = { present: 'Layer already exists', mounted: 'Mounted from', uploaded: 'Pushed', copied: 'Copied from' };

/**
 * Push progress for people, as `docker push` shows it: on a TTY one live line per layer
 * (waiting, bytes sent, how it ended), otherwise a plain line per finished layer; nothing when quiet.
 */
export function pushProgress(stream: NodeJS.WriteStream, mode: 'tty' | 'plain' | 'quiet'): PushEvents & { finish(): void } {
  const lines = new Map<number, { id: string; text: string }>();
  let drawn = 0;
  let last = 0;
  const render = (force = false) => {
    if (mode !== 'tty' || (!force && Date.now() - last < 150)) return;
    last = Date.now();
    let out = drawn ? `\x1b[${drawn}A` : '';
    for (const [index, line] of [...lines.entries()].sort((a, b) => a[0] - b[0])) out += `\x1b[2K${line.id} (layer ${index}): ${line.text}\n`;
    drawn = lines.size;
    stream.write(out);
  };
  return {
    layerStart(index, digest, size) {
      lines.set(index, { id: digest.slice(7, 19), text: `Preparing ${formatBytes(size)}` });
      render(true);
    },
    layerProgress(index, sent, size) {
      const line = lines.get(index);
      if (line) line.text = `Pushing ${formatBytes(sent)}/${formatBytes(size)}`;
      render();
    },
    layerDone(index, outcome, from) {
      const line = lines.get(index);
      if (!line) return;
      line.text = `${OUTCOME[outcome]}${from ? ` ${from}` : ''}`;
      if (mode === 'plain') stream.write(`layer ${index} ${line.id}: ${line.text}\n`);
      render(true);
    },
    warn(message) {
      if (mode === 'tty' && drawn) {
        stream.write(`\x1b[${drawn}A\x1b[J`);
        drawn = 0;
      }
      process.stderr.write(`warning: ${message}\n`);
      render(true);
    },
    finish() {
      render(true);
    },
  };
}
