import type { IndexSource } from '../remote/prepare-image.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { fit, indexingLine } from './progress.js';

/**
 * `krgo materialize` progress: where each layer's index came from, then one live line (TTY) or a
 * line every few seconds (a log) with the bytes written, the bytes fetched and the rate.
 */
export function materializeProgress(stream: NodeJS.WriteStream, mode: 'tty' | 'plain' | 'quiet', gitDir: string | undefined) {
  const started = Date.now();
  let total: number | undefined;
  let written = 0;
  let fetched = 0;
  let timer: NodeJS.Timeout | undefined;
  let lastPlain = 0;
  const line = () => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? `${formatBytes(fetched / seconds)}/s` : '';
    return `Writing: ${formatBytes(written)}${total !== undefined ? ` of ${formatBytes(total)}` : ''} written, ${formatBytes(fetched)} fetched  ${rate}`;
  };
  const draw = () => stream.write(`\r\x1b[2K${fit(line(), stream.columns)}`);
  return {
    layerIndexing(layer: number, digest: string, size: number) {
      if (mode !== 'quiet') stream.write(`${indexingLine(layer, digest, size)}\n`);
    },
    layerIndexed(layer: number, source: IndexSource, digest: string, entries: number) {
      if (mode !== 'quiet') stream.write(`layer ${layer + 1} ${digest.slice(7, 19)}: index ${source === 'built' ? 'built (one pass over the layer)' : `from the ${source}`}, ${entries} entries\n`);
    },
    writing(totalBytes: number | undefined) {
      total = totalBytes;
      if (mode === 'quiet') return;
      stream.write(gitDir ? `Writing the rootfs and one git branch per layer (repository: ${gitDir})\n` : 'Writing the rootfs\n');
      if (mode === 'tty') timer = setInterval(draw, 200);
    },
    progress(bytesWritten: number, bytesFetched: number) {
      written = bytesWritten;
      fetched = bytesFetched;
      if (mode === 'plain' && Date.now() - lastPlain >= 5000) {
        lastPlain = Date.now();
        stream.write(`${line()}\n`);
      }
    },
    finish() {
      if (timer) clearInterval(timer);
      if (mode === 'tty') stream.write(`\r\x1b[2K${fit(`${line()} in ${formatDuration(Date.now() - started)}`, stream.columns)}\n`);
    },
  };
}
