/** Pieces of bytes as one buffer: the piece itself when there is only one (no copy), else joined. */
export function joinPieces(pieces: readonly Buffer[]): Buffer {
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}

/** Bytes [offset, offset+length) of the data `chunks` make up, joining only the chunks it spans (a view when it lies in one). */
export function rangeReader(chunks: readonly Buffer[]): (offset: number, length: number) => Buffer {
  const starts: number[] = [];
  let at = 0;
  for (const c of chunks) {
    starts.push(at);
    at += c.length;
  }
  return (offset, length) => {
    const end = Math.min(offset + length, at);
    const parts: Buffer[] = [];
    for (let i = 0; i < chunks.length && starts[i]! < end; i++) {
      const from = starts[i]!;
      const to = from + chunks[i]!.length;
      if (to > offset) parts.push(chunks[i]!.subarray(Math.max(0, offset - from), Math.min(chunks[i]!.length, end - from)));
    }
    return joinPieces(parts);
  };
}
