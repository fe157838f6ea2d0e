/** What one `#include` line names. */
export interface Include {
  name: string;
  /** `#include "name"`: looked for beside the including file first. */
  quoted: boolean;
}

/** Headers larger than this are fetched when read, not looked into. */
export const MAX_HEADER_BYTES = 1024 * 1024;

/**
 * `#include <name>`, `#include "name"` and `#include_next <name>` lines, in order. Lines under
 * `#if` are taken too: most of a system header's includes are (its include guard, a language
 * level). For `<iostream>` in GCC 12 that walks 262 headers where the compiler reads 182, 1.1 MB
 * more (0.3 MB compressed), and misses none; following only the include guard's level missed 64. Includes named by a macro are not followed.
 */
export function includedHeaders(source: string): Include[] {
  const found: Include[] = [];
  for (const match of source.matchAll(/^[ \t]*#[ \t]*include(?:_next)?[ \t]*(?:<([^>\n]+)>|"([^"\n]+)")/gm)) {
    const name = match[1] ?? match[2]!;
    found.push({ name: name.trim(), quoted: match[2] !== undefined });
  }
  return found;
}

/** A GCC installation's own headers: /usr/lib/gcc/TRIPLET/VERSION/include. */
export interface GccInstall {
  triplet: string;
  version: string;
}

/**
 * Where GCC looks for `<name>` on a Debian-style system, in its order (`cpp -v`): for C++ the
 * libstdc++ headers first, then the compiler's own, /usr/local/include, the multiarch directory
 * and /usr/include. One list per installation found; directories that are not there are kept
 * (a lookup in them finds nothing).
 */
export function includeSearchPath(installs: readonly GccInstall[], cxx: boolean): string[] {
  const dirs: string[] = [];
  for (const { triplet, version } of installs) {
    const major = version.split('.')[0]!;
    if (cxx) dirs.push(`/usr/include/c++/${major}`, `/usr/include/${triplet}/c++/${major}`, `/usr/include/c++/${major}/backward`);
    dirs.push(`/usr/lib/gcc/${triplet}/${version}/include`);
  }
  dirs.push('/usr/local/include', ...installs.map((i) => `/usr/include/${i.triplet}`), '/usr/include');
  return [...new Set(dirs)];
}
