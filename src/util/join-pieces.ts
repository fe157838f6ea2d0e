/** Pieces of bytes as one buffer: the piece itself when there is only one (no copy), else joined. */
export function joinPieces(pieces: readonly Buffer[]): Buffer {
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}
