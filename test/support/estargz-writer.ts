import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { encodeEntry, type WriteEntry } from '../../src/tar/tar-writer.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * Writes an eStargz layer the way the format describes it: tar headers in one gzip member, each
 * file chunk (`chunkSize`) starting a member of its own, then a member holding the TOC
 * (`stargz.index.json`) and the 51-byte footer pointing at it. Returns the blob, the TOC digest
 * (for the layer annotation) and the uncompressed tar (for diff_ids).
 */
export function buildEstargz(entries: WriteEntry[], chunkSize = 64 * 1024): { blob: Buffer; tocDigest: string; tar: Buffer } {
  const members: Buffer[] = [];
  const plain: Buffer[] = [];
  let compressed = 0;
  let pending: Buffer[] = [];
  const flush = () => {
    if (!pending.length) return;
    const data = Buffer.concat(pending);
    const member = gzipSync(data);
    members.push(member);
    plain.push(data);
    compressed += member.length;
    pending = [];
  };
  const toc: Record<string, unknown>[] = [];
  for (const e of entries) {
    const encoded = encodeEntry(e);
    const content = e.type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    const padded = Math.ceil(content.length / 512) * 512;
    pending.push(encoded.subarray(0, encoded.length - padded));
    const base = {
      name: e.path,
      type: e.type === 'file' ? 'reg' : e.type,
      ...(e.mode !== undefined ? { mode: e.mode } : {}),
      ...(e.uid ? { uid: e.uid } : {}),
      ...(e.gid ? { gid: e.gid } : {}),
      modtime: new Date(Math.floor(e.mtime ?? 0) * 1000).toISOString().replace('.000Z', 'Z'),
      ...(e.linkname ? { linkName: e.linkname } : {}),
      ...(e.devmajor ? { devMajor: e.devmajor } : {}),
      ...(e.devminor ? { devMinor: e.devminor } : {}),
      ...(e.xattrs ? { xattrs: Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) } : {}),
    };
    if (!content.length) {
      toc.push(base);
      continue;
    }
    flush();
    for (let off = 0; off < content.length; off += chunkSize) {
      const chunk = content.subarray(off, off + chunkSize);
      const last = off + chunkSize >= content.length;
      const record = { offset: compressed, chunkOffset: off, chunkSize: chunk.length, chunkDigest: sha(chunk) };
      toc.push(off === 0 ? { ...base, size: content.length, digest: sha(content), ...record } : { name: e.path, type: 'chunk', ...record });
      pending.push(chunk);
      if (last) pending.push(Buffer.alloc(padded - content.length));
      flush();
    }
  }
  flush();
  const tocOffset = compressed;
  const json = Buffer.from(JSON.stringify({ version: 1, entries: toc }));
  const tocTar = Buffer.concat([encodeEntry({ path: 'stargz.index.json', type: 'file', content: json, mode: 0o644 }), Buffer.alloc(1024)]);
  members.push(gzipSync(tocTar));
  plain.push(tocTar);
  const footer = Buffer.alloc(51);
  Buffer.from([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff]).copy(footer, 0);
  footer.writeUInt16LE(26, 10);
  footer.write('SG', 12, 'latin1');
  footer.writeUInt16LE(22, 14);
  footer.write(`${tocOffset.toString(16).padStart(16, '0')}STARGZ`, 16, 'latin1');
  Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]).copy(footer, 38);
  return { blob: Buffer.concat([...members, footer]), tocDigest: sha(json), tar: Buffer.concat(plain) };
}
