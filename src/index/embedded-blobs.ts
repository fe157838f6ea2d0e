/** Where an embedded blob's base64 starts in a manifest as krgo writes it (JSON.stringify: no spaces). */
const DATA_OPENING = '"data":"';

/**
 * Finds the blobs embedded in a manifest (descriptors' `data`, OCI image spec §"Embedded
 * content") while its body is still arriving, chunk by chunk: each is handed on, decoded from
 * base64, as soon as its closing quote is in. Nothing here is trusted: whoever takes a blob
 * checks it against a digest of the verified manifest. A manifest written another way (spaces
 * around the colon) just yields nothing, and the blobs are read from the whole manifest as usual.
 */
export class EmbeddedBlobScanner {
  /** Text not scanned to its end yet: from an open blob's first base64 character, or a tail that may hold part of an opening. */
  private pending = '';
  /** Whether `pending` starts inside a blob's base64; where its closing quote is looked for next. */
  private inBlob = false;
  private searchFrom = 0;

  constructor(private readonly onBlob: (bytes: Buffer) => void) {}

  push(chunk: Buffer): void {
    // base64 and JSON's structure are ASCII: latin1 keeps every byte as one character.
    this.pending += chunk.toString('latin1');
    for (;;) {
      if (!this.inBlob) {
        const at = this.pending.indexOf(DATA_OPENING, this.searchFrom);
        if (at < 0) {
          // An opening split across chunks is found next time from this tail.
          const keep = Math.min(this.pending.length, DATA_OPENING.length - 1);
          this.pending = this.pending.slice(this.pending.length - keep);
          this.searchFrom = 0;
          return;
        }
        this.pending = this.pending.slice(at + DATA_OPENING.length);
        this.inBlob = true;
        this.searchFrom = 0;
      }
      const close = this.pending.indexOf('"', this.searchFrom);
      if (close < 0) {
        this.searchFrom = this.pending.length;
        return;
      }
      const base64 = this.pending.slice(0, close);
      this.pending = this.pending.slice(close + 1);
      this.inBlob = false;
      this.searchFrom = 0;
      this.onBlob(Buffer.from(base64, 'base64'));
    }
  }
}
