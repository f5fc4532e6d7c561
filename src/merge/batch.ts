/**
 * Accumulates the accepted rows of one (hospital, month) partition, from the
 * blocks of successive chunks, into contiguous columns: one encode task then
 * carries a handful of arrays instead of one set per chunk, and the chunk's
 * own buffers can be freed as soon as it is applied. The source-unit
 * dictionary is per batch; duplicate rows are skipped on the way in.
 */
import type { Block } from '../types.js';

class Column<T extends Int32Array | Uint32Array | Float64Array | Uint8Array> {
  data: T;
  length = 0;
  constructor(private readonly make: (n: number) => T, capacity = 256) {
    this.data = make(capacity);
  }
  reserve(extra: number): T {
    if (this.length + extra > this.data.length) {
      const bigger = this.make(Math.max(this.length + extra, this.data.length * 2));
      bigger.set(this.data.subarray(0, this.length) as never);
      this.data = bigger;
    }
    return this.data;
  }
  /** The filled part, right-sized (a copy only when there is slack). */
  take(): T {
    return (this.length === this.data.length ? this.data : this.data.slice(0, this.length)) as T;
  }
}

export class BatchBuilder {
  private day = new Column((n) => new Int32Array(n));
  private code = new Column((n) => new Uint32Array(n));
  private value = new Column((n) => new Float64Array(n));
  private ref = new Column((n) => new Float64Array(n));
  private srcValueEnd = new Column((n) => new Uint32Array(n));
  private keys: string[] = [];
  private unitIds = new Map<string, number>();
  private units: string[] = [];
  private srcValues: string[] = [];
  private srcLength = 0;
  rows = 0;

  constructor(readonly hospital: string, readonly month: string, private readonly labs: boolean) {}

  /** Appends a block's rows, skipping the row indices in `drop` (sorted). */
  append(b: Block, drop: Uint32Array | null): void {
    const kept = b.n - (drop?.length ?? 0);
    if (kept === 0) return;
    // Remap the block's source-unit dictionary onto the batch's.
    const unitMap = b.srcUnits.map((u) => {
      let id = this.unitIds.get(u);
      if (id === undefined) {
        id = this.units.length;
        this.unitIds.set(u, id);
        this.units.push(u);
      }
      return id;
    });
    const day = this.day.reserve(kept);
    const code = this.code.reserve(kept);
    const value = this.value.reserve(kept);
    const ref = this.labs ? this.ref.reserve(2 * kept) : null;
    const ends = this.srcValueEnd.reserve(kept);
    let o = this.day.length;
    if (!drop) {
      // The common case: every row kept, columns copied in bulk.
      day.set(b.day, o);
      value.set(b.value, o);
      if (ref) ref.set(b.ref, 2 * o);
      for (let i = 0; i < b.n; i++) {
        const c = b.code[i];
        code[o + i] = (c & 0xffff) | (unitMap[c >>> 16] << 16);
        ends[o + i] = this.srcLength + b.srcValueEnd[i];
      }
      this.keys.push(b.patientKeys);
      this.srcValues.push(b.srcValues);
      this.srcLength += b.srcValues.length;
      o += b.n;
    } else {
      let d = 0;
      for (let i = 0; i < b.n; i++) {
        if (d < drop.length && drop[d] === i) {
          d++;
          continue;
        }
        day[o] = b.day[i];
        const c = b.code[i];
        code[o] = (c & 0xffff) | (unitMap[c >>> 16] << 16);
        value[o] = b.value[i];
        if (ref) {
          ref[2 * o] = b.ref[2 * i];
          ref[2 * o + 1] = b.ref[2 * i + 1];
        }
        this.keys.push(b.patientKeys.slice(32 * i, 32 * i + 32));
        const start = i === 0 ? 0 : b.srcValueEnd[i - 1];
        const end = b.srcValueEnd[i];
        this.srcValues.push(b.srcValues.slice(start, end));
        this.srcLength += end - start;
        ends[o] = this.srcLength;
        o++;
      }
    }
    this.day.length = this.code.length = this.value.length = this.srcValueEnd.length = o;
    if (ref) this.ref.length = 2 * o;
    this.rows = o;
  }

  /** The accumulated rows as one block; the builder is empty afterwards. */
  take(): Block {
    const block: Block = {
      hospital: this.hospital,
      month: this.month,
      n: this.rows,
      day: this.day.take(),
      code: this.code.take(),
      value: this.value.take(),
      ref: this.ref.take(),
      patientKeys: this.keys.join(''),
      srcUnits: this.units,
      srcValues: this.srcValues.join(''),
      srcValueEnd: this.srcValueEnd.take(),
    };
    // Fresh, small columns: a partition's next batch may be much smaller, and
    // 240 partitions each keeping its largest capacity would defeat the memory bound.
    this.day = new Column((n) => new Int32Array(n));
    this.code = new Column((n) => new Uint32Array(n));
    this.value = new Column((n) => new Float64Array(n));
    this.ref = new Column((n) => new Float64Array(n));
    this.srcValueEnd = new Column((n) => new Uint32Array(n));
    this.keys = [];
    this.unitIds = new Map();
    this.units = [];
    this.srcValues = [];
    this.srcLength = 0;
    this.rows = 0;
    return block;
  }
}
