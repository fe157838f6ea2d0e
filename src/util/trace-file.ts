import { appendFileSync } from 'node:fs';

/**
 * What a KRGO_TRACE_* variable turns on: a function appending one line to the file it names, or
 * undefined when it is unset. A file that cannot be written ends that trace with one warning: a
 * debugging aid never stops a command (or shows it a stack trace).
 */
export function traceFile(variable: string): ((line: string) => void) | undefined {
  const file = process.env[variable];
  if (!file) return undefined;
  let broken = false;
  return (line) => {
    if (broken) return;
    try {
      appendFileSync(file, `${line}\n`);
    } catch (err) {
      broken = true;
      process.stderr.write(`warning: ${variable}: cannot write ${file} (${(err as Error).message}); that trace stops here\n`);
    }
  };
}
