/**
 * The rows the duplicate filter held back (suspects), in arrival order,
 * until it decides: each one's partition, its index among that partition's
 * held rows, its line and its raw record (quarantined as read if it is a
 * duplicate). Kept column-wise, the records back to back in one byte
 * buffer: tens of thousands of suspects on a large file would otherwise be
 * as many objects and small buffers on the coordinator's heap, alive (and
 * marked by every full garbage collection) until the end of the file.
 */
import { Column } from './batch.js';

export class HeldRows<P> {
  private readonly parts: P[] = [];
  private readonly partIds = new Map<P, number>();
  private readonly part = new Column(Uint32Array);
  private readonly index = new Column(Uint32Array);
  private readonly line = new Column(Float64Array);
  /** End of each record in `bytes`. */
  private readonly end = new Column(Uint32Array);
  private readonly bytes = new Column(Uint8Array, 1 << 14);
  length = 0;

  /** Holds a row: `record` is its raw text, copied. */
  push(part: P, index: number, line: number, record: Uint8Array): void {
    let p = this.partIds.get(part);
    if (p === undefined) {
      p = this.parts.push(part) - 1;
      this.partIds.set(part, p);
    }
    const n = this.length;
    const at = n === 0 ? 0 : this.end.data[n - 1];
    this.bytes.reserve(at, record.length).set(record, at);
    this.part.reserve(n, 1)[n] = p;
    this.index.reserve(n, 1)[n] = index;
    this.line.reserve(n, 1)[n] = line;
    this.end.reserve(n, 1)[n] = at + record.length;
    this.length = n + 1;
  }

  /** Held row `s` (in arrival order); its record is a view, valid until the next push. */
  get(s: number): { part: P; index: number; line: number; record: Buffer } {
    const end = this.end.data;
    const start = s === 0 ? 0 : end[s - 1];
    const bytes = this.bytes.data;
    const record = Buffer.from(bytes.buffer, bytes.byteOffset + start, end[s] - start);
    return { part: this.parts[this.part.data[s]], index: this.index.data[s], line: this.line.data[s], record };
  }
}
