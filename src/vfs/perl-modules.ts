import { commandEndingWith } from './exec-watch.js';

/**
 * The modules a Perl file or command line loads when it is compiled: `use Module` statements
 * at the start of a line wherever they stand (perl runs them at compile time, in a sub as
 * well), `require Module` with a bareword at the start of a line, and the classes `use parent` /
 * `use base` name (not versions: `use 5.010`, `use v5.36`). POD and what
 * follows `__END__` or `__DATA__` are not code. Only feeds prefetching: anything unusual (a
 * statement in a string or a heredoc, a computed module name) is a missed hint or an extra
 * fetch, never an error.
 */

/** Perl source read for modules, at most (a larger file is data, not code to follow). */
export const MAX_PERL_SOURCE_BYTES = 1024 * 1024;

const MODULE_NAME = /^[A-Za-z_]\w*(?:::\w+)*$/;
const USE = /^\s*(?:use|no)\s+([A-Za-z_][\w:]*)(.*)$/;
const REQUIRE = /^\s*require\s+([A-Za-z_][\w:]*)\s*;/;
/** Pragmas that load the classes they are given. */
const LOADS_ITS_ARGUMENTS = new Set(['parent', 'base']);

/** Every module `source` loads as it is compiled, in order of first mention, each once. */
export function perlModules(source: string): string[] {
  const found = new Set<string>();
  let pod = false;
  for (const line of source.slice(0, MAX_PERL_SOURCE_BYTES).split('\n')) {
    // POD runs from a line starting with `=word` to a line starting with `=cut`.
    if (/^=[a-zA-Z]/.test(line)) {
      pod = !line.startsWith('=cut');
      continue;
    }
    if (pod) continue;
    if (/^__(?:END|DATA)__\b/.test(line)) break;
    const use = USE.exec(line);
    if (use) {
      const [, module, rest] = use as unknown as [string, string, string];
      if (!MODULE_NAME.test(module) || /^v\d/.test(module)) continue;
      found.add(module);
      if (LOADS_ITS_ARGUMENTS.has(module)) for (const parent of classesNamed(rest)) found.add(parent);
      continue;
    }
    const required = REQUIRE.exec(line);
    if (required && MODULE_NAME.test(required[1]!)) found.add(required[1]!);
  }
  return [...found];
}

/** The class names in `use parent qw(A B)`, `use base 'A', "B"` (not `-norequire` ones). */
function classesNamed(rest: string): string[] {
  if (/-norequire/.test(rest)) return [];
  const words = rest.replace(/\bqw\s*[([{<\/]|[)\]}>\/;,'"]/g, ' ').split(/\s+/);
  return words.filter((w) => MODULE_NAME.test(w) && w !== 'qw');
}

/** Whether a command line runs perl (`perl`, `/usr/bin/perl5.36.0`). */
export function isPerlProgram(argv: readonly string[]): boolean {
  const program = argv[0]?.slice(argv[0].lastIndexOf('/') + 1) ?? '';
  return /^perl(?:5(?:\.\d+)*)?$/.test(program);
}

/** The perl command line `argv` is, or ends with as a wrapper's command. */
export function perlCommandIn(argv: readonly string[]): string[] | undefined {
  return commandEndingWith(argv, isPerlProgram);
}

/** Perl options that take the next argument as their value when given alone (`-I dir`, `-x dir` is joined). */
const OPTIONS_WITH_VALUE = new Set(['I', 'M', 'm', 'e', 'E']);

/**
 * The modules a perl command line loads before its program runs: `-MModule` and `-mModule`
 * (with `=args`, or `-M-Module` for `no`), and what the code of `-e`/`-E` uses. A script says
 * nothing here: its modules are its own file's hints. Anything that is not a perl command line
 * gives none.
 */
export function perlCommandModules(argv: readonly string[]): string[] {
  if (!isPerlProgram(argv)) return [];
  const found: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-' || arg === '--') break;
    // Switches may be grouped (-wle CODE); one that takes a value ends the group.
    for (let k = 1; k < arg.length; k++) {
      const flag = arg[k]!;
      if (!OPTIONS_WITH_VALUE.has(flag)) continue;
      const value = k + 1 < arg.length ? arg.slice(k + 1) : argv[++i];
      if (value === undefined) return [...new Set(found)];
      if (flag === 'M' || flag === 'm') {
        const module = value.replace(/^-/, '').split('=')[0]!.trim();
        if (MODULE_NAME.test(module)) found.push(module);
      } else if (flag === 'e' || flag === 'E') found.push(...perlModules(value.replaceAll(';', ';\n')));
      break;
    }
  }
  return [...new Set(found)];
}
