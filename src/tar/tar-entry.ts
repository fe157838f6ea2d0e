export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One tar member with its metadata and where its data sits in the uncompressed stream. */
export interface TarEntry {
  /** The name as stored (after PAX/GNU long-name records), not yet made safe. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (whole seconds; the fraction is in mtimeNsec). */
  mtime: number;
  /** Nanoseconds past `mtime`: PAX headers carry them, and umoci keeps them. */
  mtimeNsec: number;
  atime?: number;
  atimeNsec?: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, Buffer>;
  uname?: string;
  gname?: string;
  /** Offset of the first header block of this member (PAX/GNU records included). */
  headerOffset: number;
  /** Offset of the data in the uncompressed tar stream. */
  dataOffset: number;
  /**
   * eStargz: where the bytes are instead, as gzip members of the blob (each chunk of a file
   * starts a member). Absent for plain layers.
   */
  chunks?: StargzChunk[];
  /**
   * What the file asks for when it is used, found when the layer was indexed (file-hints.ts):
   * an ELF file's interpreter, libraries and telling symbols, a Python module's imports. Lets a
   * mount fetch them as soon as the file is first read, without waiting for its bytes.
   */
  deps?: string[];
}

/** Xattrs kept as text (an index, an eStargz TOC, a tree record): name → base64 of the value. */
export function xattrsFromBase64(record: Record<string, string>): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(record).map(([name, value]) => [name, Buffer.from(value, 'base64')]));
}

export interface StargzChunk {
  /** Offset of the chunk in the file. */
  fileOffset: number;
  size: number;
  /** Compressed offset of the gzip member holding it, and where it starts once inflated. */
  memberOffset: number;
  innerOffset: number;
  /** sha256:<hex> of the chunk's bytes, checked when read. */
  digest?: string;
}
