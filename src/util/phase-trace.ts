import { traceFile } from './trace-file.js';

/**
 * KRGO_TRACE_PHASES=FILE: one line per step on a command's way (ms since the process started,
 * the step), to see where a mount's time to ready goes beside KRGO_TRACE_HTTP's requests.
 * Off, it costs one comparison.
 */
const PHASE_TRACE = traceFile('KRGO_TRACE_PHASES');

export function tracePhase(step: string): void {
  PHASE_TRACE?.(`${performance.now().toFixed(1)} ${step}`);
}
