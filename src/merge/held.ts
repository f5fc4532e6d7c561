/**
 * The rows the duplicate filter held back (suspects), in arrival order,
 * until it decides: each one's partition, its index among that partition's
 * held rows, its line and its raw record (quarantined as read if it is a
 * duplicate). Kept column-wise, the records back to back in one byte
 * buffer: tens of thousands of suspects on a large file would otherwise be
 * as many objects and small buffers on the coordinator's heap, alive (and
 * marked by every full garbage collection) until the end of the file.
 */
export class HeldRows<P> {
  private readonly parts: P[] = [];
  private readonly partIds = new Map<P, number>();
  private part = new Uint32Array(256);
  private index = new Uint32Array(256);
  private line = new Float64Array(256);
  /** End of each record in `bytes`. */
  private end = new Uint32Array(256);
  private bytes = new Uint8Array(1 << 14);
  length = 0;

  /** Holds a row: `record` is its raw text, copied. */
  push(part: P, index: number, line: number, record: Uint8Array): void {
    let p = this.partIds.get(part);
    if (p === undefined) {
      p = this.parts.push(part) - 1;
      this.partIds.set(part, p);
    }
    const n = this.length;
    if (n === this.part.length) {
      this.part = grow(this.part, 2 * n);
      this.index = grow(this.index, 2 * n);
      this.line = grow(this.line, 2 * n);
      this.end = grow(this.end, 2 * n);
    }
    const at = n === 0 ? 0 : this.end[n - 1];
    if (at + record.length > this.bytes.length) this.bytes = grow(this.bytes, Math.max(2 * this.bytes.length, at + record.length));
    this.bytes.set(record, at);
    this.part[n] = p;
    this.index[n] = index;
    this.line[n] = line;
    this.end[n] = at + record.length;
    this.length = n + 1;
  }

  /** Held row `s` (in arrival order); its record is a view, valid until the next push. */
  get(s: number): { part: P; index: number; line: number; record: Buffer } {
    const start = s === 0 ? 0 : this.end[s - 1];
    const record = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, this.end[s] - start);
    return { part: this.parts[this.part[s]], index: this.index[s], line: this.line[s], record };
  }
}

function grow<T extends Uint8Array | Uint32Array | Float64Array>(a: T, length: number): T {
  const bigger = new (a.constructor as new (n: number) => T)(length);
  bigger.set(a as never);
  return bigger;
}
