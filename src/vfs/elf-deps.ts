/**
 * The shared libraries an ELF file asks for (its interpreter and DT_NEEDED names), read through
 * `read(offset, length)`: header and program headers first, then the dynamic section and the
 * string table wherever they are in the file. 64-bit little-endian only (x86-64, arm64); anything
 * else, or anything malformed, gives undefined: this only feeds prefetching.
 */
export interface ElfDependencies {
  interpreter?: string;
  needed: string[];
  /** The dynamic string table's names (libraries, and the symbols it imports and exports). */
  names: Set<string>;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const MAX_READ = 1024 * 1024;

type Read = (offset: number, length: number) => Promise<Buffer>;

function cString(buffer: Buffer, at: number): string | undefined {
  const end = buffer.indexOf(0, at);
  return at < buffer.length && end > at ? buffer.toString('latin1', at, end) : undefined;
}

export async function elfDependencies(read: Read, fileSize: number): Promise<ElfDependencies | undefined> {
  if (fileSize < 64) return undefined;
  const header = await read(0, Math.min(fileSize, 4096));
  if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return undefined;
  const phoff = Number(header.readBigUInt64LE(32));
  const phentsize = header.readUInt16LE(54);
  const phnum = header.readUInt16LE(56);
  if (phentsize < 56 || phoff + phnum * phentsize > header.length) return undefined;

  const loads: { vaddr: number; offset: number; size: number }[] = [];
  let interpreter: string | undefined;
  let dynamic: { offset: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = header.readUInt32LE(at);
    const offset = Number(header.readBigUInt64LE(at + 8));
    const vaddr = Number(header.readBigUInt64LE(at + 16));
    const size = Number(header.readBigUInt64LE(at + 32));
    if (type === PT_LOAD) loads.push({ vaddr, offset, size });
    else if (type === PT_INTERP && size < 4096 && offset + size <= fileSize) interpreter = cString(await read(offset, size), 0);
    else if (type === PT_DYNAMIC && size <= MAX_READ && offset + size <= fileSize) dynamic = { offset, size };
  }
  if (!dynamic) return { ...(interpreter ? { interpreter } : {}), needed: [], names: new Set() };

  const entries = await read(dynamic.offset, dynamic.size);
  const neededAt: number[] = [];
  let strtab: number | undefined;
  let strsz = 0;
  for (let at = 0; at + 16 <= entries.length; at += 16) {
    const tag = entries.readBigInt64LE(at);
    const value = Number(entries.readBigUInt64LE(at + 8));
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededAt.push(value);
    else if (tag === DT_STRTAB) strtab = value;
    else if (tag === DT_STRSZ) strsz = value;
  }
  // The string table is given as an address: map it to a file offset through the loaded segments.
  const segment = strtab === undefined ? undefined : loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.size);
  if (!segment || strsz <= 0 || strsz > MAX_READ) return { ...(interpreter ? { interpreter } : {}), needed: [], names: new Set() };
  const strings = await read(segment.offset + (strtab! - segment.vaddr), strsz);
  const needed = neededAt.map((at) => cString(strings, at)).filter((name): name is string => name !== undefined);
  const names = new Set(strings.toString('latin1').split('\0').filter((name) => name !== ''));
  return { ...(interpreter ? { interpreter } : {}), needed, names };
}
