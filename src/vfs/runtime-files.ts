/**
 * Files glibc itself opens for a program, one round trip each when met one after the other: the
 * loader's cache for every dynamic program; the C.UTF-8 locale and the gconv cache when the
 * program (or a library of it) imports setlocale (Python, for one, switches the C locale to
 * C.UTF-8); the local time zone when it imports the time functions that read it. Fetched with
 * the libraries, when present in the tree.
 */
export const LOADER_FILES = ['/etc/ld.so.cache'];
export const RUNTIME_FILES: { symbols: string[]; files: string[] }[] = [
  { symbols: ['setlocale'], files: ['/usr/lib/locale/C.utf8/LC_CTYPE', '/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache', '/usr/lib/aarch64-linux-gnu/gconv/gconv-modules.cache'] },
  { symbols: ['tzset', 'localtime', 'localtime_r', 'mktime'], files: ['/etc/localtime'] },
];

/** The symbols that tell which runtime files a program will open. */
export const RUNTIME_SYMBOLS = RUNTIME_FILES.flatMap((r) => r.symbols);
