import { importedModules } from './python-imports.js';
import { commandEndingWith } from './exec-watch.js';

/** CPython options that take the next argument as their value (`-W default`, `-X dev`). */
const OPTIONS_WITH_VALUE = new Set(['W', 'X']);

/** Whether a command line runs CPython 3 (`python3`, `/usr/bin/python3.11`). */
export function isPythonProgram(argv: readonly string[]): boolean {
  const program = argv[0]?.slice(argv[0].lastIndexOf('/') + 1) ?? '';
  return /^python3(\.\d+)?$/.test(program);
}

/**
 * The CPython command line `argv` is, or ends with as a wrapper's command (`chroot DIR python3
 * -c CODE`, `env X=1 python3 app.py`): what the process will run once it has exec'd.
 */
export function pythonCommandIn(argv: readonly string[]): string[] | undefined {
  return commandEndingWith(argv, isPythonProgram);
}

/**
 * The modules a CPython command line will import first, as far as the line itself says:
 * the top-level imports of `-c CODE`, or the module of `-m MODULE`. A script (`python3 app.py`)
 * says nothing here: its imports are read from the script when it is opened. Anything that is
 * not a CPython command line gives none.
 */
export function pythonCommandModules(argv: readonly string[]): string[] {
  if (!isPythonProgram(argv)) return [];
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-' || arg === '--') return [];
    if (arg.startsWith('--')) continue;
    // Short options may be grouped (-Bc CODE, -u -X dev); -c and -m end the options.
    for (let k = 1; k < arg.length; k++) {
      const flag = arg[k]!;
      if (flag === 'c' || flag === 'm') {
        const value = k + 1 < arg.length ? arg.slice(k + 1) : argv[i + 1];
        if (value === undefined) return [];
        return flag === 'c' ? importedModules(value, '') : [value];
      }
      if (OPTIONS_WITH_VALUE.has(flag)) {
        if (k + 1 === arg.length) i++;
        break;
      }
    }
  }
  return [];
}
