/**
 * The modules a Python source file imports when it is loaded: `import a.b, c as d` and
 * `from a.b import c` statements at the top level of the module (column 0, outside any block;
 * those in functions or `if` blocks may never run), and those at the first level of a top-level
 * `try` body (the `try: from _accelerator import *` idiom: the body runs on import, its
 * `except ImportError` fallback usually not), relative ones resolved against the file's
 * package. Each name comes with the submodules it may mean (`from a import b` imports a.b when b
 * is a module). Only feeds prefetching: anything unusual is skipped, never an error.
 */
export interface PythonImport {
  /** Dotted module name (absolute). */
  module: string;
  /** `from module import x, y`: names that may be submodules. */
  names: string[];
}

/** Python source read for imports, at most (a module larger than this is generated data, not code to follow). */
export const MAX_SOURCE_BYTES = 1024 * 1024;

/** Every module name a file's top-level imports may load: each module, and each `from` name as a possible submodule. */
export function importedModules(source: string, pkg: string): string[] {
  return pythonImports(source, pkg).flatMap((imp) => [imp.module, ...imp.names.map((n) => `${imp.module}.${n}`)]);
}
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Top-level import statements of `source`; `pkg` is the dotted package the file belongs to ('' at top level). */
export function pythonImports(source: string, pkg: string): PythonImport[] {
  const out: PythonImport[] = [];
  const lines = source.slice(0, MAX_SOURCE_BYTES).split('\n');
  // Inside a top-level `try:` body: the indentation of its first statement, once seen.
  let inTry = false;
  let tryIndent: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (/^[^\s#]/.test(line)) {
      inTry = /^try\s*:\s*(#.*)?$/.test(line);
      tryIndent = undefined;
    } else if (inTry && line.trim() !== '' && !line.trimStart().startsWith('#')) {
      const indent = /^\s*/.exec(line)![0];
      tryIndent ??= indent;
      if (indent === tryIndent) line = line.slice(indent.length);
    }
    if (!line.startsWith('import ') && !line.startsWith('from ')) continue;
    // Parenthesized or backslash-continued name lists span lines.
    if (line.includes('(') && !line.includes(')')) {
      while (i + 1 < lines.length && !line.includes(')')) line += ` ${lines[++i]!}`;
    }
    while (line.trimEnd().endsWith('\\') && i + 1 < lines.length) line = `${line.trimEnd().slice(0, -1)} ${lines[++i]!}`;
    line = line.replace(/#.*$/, '').replace(/[()]/g, ' ').trim();
    if (line.startsWith('import ')) {
      for (const part of line.slice(7).split(',')) {
        const module = part.trim().split(/\s+as\s+/)[0]!.trim();
        if (module.split('.').every((p) => IDENT.test(p))) out.push({ module, names: [] });
      }
      continue;
    }
    const m = /^from\s+(\.*)([A-Za-z0-9_.]*)\s+import\s+(.+)$/.exec(line);
    if (!m) continue;
    const [, dots, rest, list] = m as unknown as [string, string, string, string];
    let module = rest;
    if (dots.length > 0) {
      const base = pkg === '' ? [] : pkg.split('.');
      if (dots.length - 1 > base.length) continue;
      const anchor = base.slice(0, base.length - (dots.length - 1));
      module = [...anchor, ...(rest ? rest.split('.') : [])].join('.');
    }
    if (module === '' || !module.split('.').every((p) => IDENT.test(p))) continue;
    const names = list.split(',').map((n) => n.trim().split(/\s+as\s+/)[0]!.trim()).filter((n) => IDENT.test(n));
    out.push({ module, names });
  }
  return out;
}

/** A Python installation's module directory: /usr/lib/python3.11, /usr/local/lib/python3.12, … */
const STDLIB = /^(.*)\/lib\/python(3(?:\.\d+)?)\//;

/** CPython's default module search path for a file of this installation, or undefined when the file is not in one. */
export function searchPath(path: string): string[] | undefined {
  const m = STDLIB.exec(path);
  if (!m) return undefined;
  const [, prefix, version] = m as unknown as [string, string, string];
  const stdlib = `${prefix}/lib/python${version}`;
  return [stdlib, `${stdlib}/lib-dynload`, `/usr/local/lib/python${version}/dist-packages`, '/usr/lib/python3/dist-packages', `${stdlib}/site-packages`];
}

/** The dotted package a module file belongs to, relative to the search path entry holding it. */
export function packageOf(path: string, roots: string[]): string {
  const root = roots.filter((r) => path.startsWith(`${r}/`)).sort((a, b) => b.length - a.length)[0];
  if (!root) return '';
  const dirs = path.slice(root.length + 1).split('/').slice(0, -1);
  return dirs.join('.');
}
