import type { TarEntry } from '../tar/tar-entry.js';
import type { EntryData } from '../tar/tar-parser.js';
import { normalizeEntryPath } from '../tar/entry-path.js';
import { elfDependencies, type ElfDependencies } from '../vfs/elf-deps.js';
import { importedModules, MAX_SOURCE_BYTES, packageOf, searchPath } from '../vfs/python-imports.js';
import { RUNTIME_SYMBOLS } from '../vfs/runtime-files.js';
import { MAX_PERL_SOURCE_BYTES, perlModules } from '../vfs/perl-modules.js';
import { MAX_DEPS } from './index-codec.js';
import { rangeReader } from '../util/join-pieces.js';

/*
 * Dependency hints kept in a layer's index (TarEntry.deps), one string each:
 *   elf-interp:<path>   elf-needed:<soname>   elf-symbol:<name>   py:<dotted module>   pm:<Perl::Module>
 * Found while the layer is indexed (its bytes pass by anyway), so a mount knows at a file's
 * first read what it will ask for next, without waiting for the file's own bytes.
 */
const INTERP = 'elf-interp:';
const NEEDED = 'elf-needed:';
const SYMBOL = 'elf-symbol:';
const MODULE = 'py:';
const PERL_MODULE = 'pm:';
const ELF_MAGIC = 0x7f454c46;
/** Files this large are not looked into (their bytes would be held while the layer streams by). */
const MAX_ELF_BYTES = 64 * 1024 * 1024;

/** What `entry` will ask for, read from its bytes as the layer is indexed; undefined when it is neither ELF nor a Python or Perl file. */
export async function fileDeps(entry: TarEntry, data: EntryData): Promise<string[] | undefined> {
  const deps = await depsOf(entry, data);
  return deps?.slice(0, MAX_DEPS);
}

async function depsOf(entry: TarEntry, data: EntryData): Promise<string[] | undefined> {
  if (entry.type !== 'file' || entry.size < 4) return undefined;
  const parts = normalizeEntryPath(entry.path);
  if (!parts || parts.length === 0) return undefined;
  const path = `/${parts.join('/')}`;
  // A module of an installation, or a script anywhere else (its imports are absolute, or
  // relative to its own directory, which packageOf then leaves at the top).
  const roots = path.endsWith('.py') && entry.size <= MAX_SOURCE_BYTES ? (searchPath(path) ?? [path.slice(0, path.lastIndexOf('/'))]) : undefined;
  // Perl: a module or script by its name, or a script by its #! line (checked once read).
  let kind: 'python' | 'perl' | 'script' | 'elf' | undefined = roots ? 'python' : /\.p[lm]$/.test(path) && entry.size <= MAX_PERL_SOURCE_BYTES ? 'perl' : undefined;
  const chunks: Buffer[] = [];
  let have = 0;
  for await (const chunk of data.chunks()) {
    chunks.push(chunk);
    have += chunk.length;
    if (!kind && have >= 4) {
      const head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (head.readUInt32BE(0) === ELF_MAGIC && entry.size <= MAX_ELF_BYTES) kind = 'elf';
      else if (head.toString('latin1', 0, 2) === '#!' && entry.size <= MAX_PERL_SOURCE_BYTES) kind = 'script';
      else return undefined;
    }
  }
  if (kind === 'python') return importedModules(Buffer.concat(chunks).toString('latin1'), packageOf(path, roots!)).map((m) => `${MODULE}${m}`);
  if (kind === 'perl' || kind === 'script') {
    const source = Buffer.concat(chunks).toString('latin1');
    if (kind === 'script' && !/^#![^\n]*\bperl/.test(source)) return undefined;
    return perlModules(source).map((m) => `${PERL_MODULE}${m}`);
  }
  if (kind !== 'elf') return undefined;
  // Only the parts the ELF parser asks for are joined (header, dynamic section, string table).
  const read = rangeReader(chunks);
  const deps = await elfDependencies((offset, length) => Promise.resolve(read(offset, length)), have);
  if (!deps) return undefined;
  return [...(deps.interpreter ? [`${INTERP}${deps.interpreter}`] : []), ...deps.needed.map((n) => `${NEEDED}${n}`), ...RUNTIME_SYMBOLS.filter((s) => deps.names.has(s)).map((s) => `${SYMBOL}${s}`)];
}

/** An ELF file's dependencies as its hints give them, or undefined when the hints are not an ELF file's. */
export function elfFromDeps(deps: readonly string[]): ElfDependencies | undefined {
  if (deps.some((d) => d.startsWith(MODULE) || d.startsWith(PERL_MODULE))) return undefined;
  const interpreter = deps.find((d) => d.startsWith(INTERP))?.slice(INTERP.length);
  return {
    ...(interpreter ? { interpreter } : {}),
    needed: deps.filter((d) => d.startsWith(NEEDED)).map((d) => d.slice(NEEDED.length)),
    names: new Set(deps.filter((d) => d.startsWith(SYMBOL)).map((d) => d.slice(SYMBOL.length))),
  };
}

/** The modules a Python file imports, as its hints give them. */
export function modulesFromDeps(deps: readonly string[]): string[] {
  return deps.filter((d) => d.startsWith(MODULE)).map((d) => d.slice(MODULE.length));
}

/** The modules a Perl file loads, as its hints give them. */
export function perlModulesFromDeps(deps: readonly string[]): string[] {
  return deps.filter((d) => d.startsWith(PERL_MODULE)).map((d) => d.slice(PERL_MODULE.length));
}
