/**
 * Accumulates the accepted rows of one (hospital, month) partition, from
 * the chunks that carry them, into contiguous columns: one encode task then
 * carries a handful of typed arrays. On the way in, duplicates are skipped,
 * row references to a chunk's new dictionary entries become published ids,
 * and each row's patient is marked in its measure's bitset (n_patients).
 */
import { type Batch, type ChunkResult, PATIENT_WORDS } from '../types.js';
import { type Dictionaries, resolve } from './dicts.js';

class Column<T extends Int32Array | Uint32Array | Float64Array> {
  data: T;
  constructor(private readonly make: (n: number) => T, capacity = 256) {
    this.data = make(capacity);
  }
  reserve(length: number, extra: number): T {
    if (length + extra > this.data.length) {
      const bigger = this.make(Math.max(length + extra, this.data.length * 2));
      bigger.set(this.data.subarray(0, length) as never);
      this.data = bigger;
    }
    return this.data;
  }
  /** The filled part, right-sized. */
  take(length: number): T {
    return (length === this.data.length ? this.data : this.data.slice(0, length)) as T;
  }
}

/** A growable bitset with a population count. */
export class Bitset {
  private words = new Uint32Array(8);
  add(i: number): void {
    const w = i >>> 5;
    if (w >= this.words.length) {
      const bigger = new Uint32Array(Math.max(w + 1, this.words.length * 2));
      bigger.set(this.words);
      this.words = bigger;
    }
    this.words[w] |= 1 << (i & 31);
  }
  count(): number {
    let n = 0;
    for (let x of this.words) {
      x -= (x >>> 1) & 0x55555555;
      x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
      n += Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
    }
    return n;
  }
  get bytes(): number {
    return this.words.byteLength;
  }
}

/** Rows to append: a chunk result's accepted rows, or a batch (rows held back by the duplicate filter). */
export type RowSource = Pick<ChunkResult, 'units' | 'day' | 'code' | 'value' | 'ref' | 'patient' | 'srcValue'>;

/** Ids for a source whose references are all published already (a batch). */
export const NO_PENDING: ChunkIds = { patients: new Uint32Array(0), values: new Uint32Array(0) };

/** What a chunk's rows need to be resolved: ids of its new entries once published. */
export interface ChunkIds {
  readonly patients: Uint32Array;
  readonly values: Uint32Array;
}

export class BatchBuilder {
  private day = new Column((n) => new Int32Array(n));
  private code = new Column((n) => new Uint32Array(n));
  private value = new Column((n) => new Float64Array(n));
  private ref = new Column((n) => new Float64Array(n));
  private patient = new Column((n) => new Uint32Array(n));
  private srcValue = new Column((n) => new Uint32Array(n));
  private unitIds = new Map<string, number>();
  private units: string[] = [];
  rows = 0;

  constructor(readonly hospital: string, readonly month: string, private readonly labs: boolean) {}

  /**
   * Appends rows [from, to) of a chunk result, skipping those whose index is
   * in `drop` (sorted), and marks each kept row's patient in `patients[measure]`.
   */
  append(r: RowSource, from: number, to: number, drop: number[] | null, ids: ChunkIds, dicts: Dictionaries, patients: Bitset[]): void {
    const kept = to - from - (drop?.length ?? 0);
    if (kept <= 0) return;
    // The chunk's unit dictionary onto the batch's.
    const unitMap = r.units.map((u) => {
      let id = this.unitIds.get(u);
      if (id === undefined) {
        id = this.units.length;
        this.unitIds.set(u, id);
        this.units.push(u);
      }
      return id;
    });
    let o = this.rows;
    const day = this.day.reserve(o, kept);
    const code = this.code.reserve(o, kept);
    const value = this.value.reserve(o, kept);
    const ref = this.labs ? this.ref.reserve(2 * o, 2 * kept) : null;
    const patient = this.patient.reserve(o, kept);
    const srcValue = this.srcValue.reserve(o, kept);
    const rDay = r.day;
    const rCode = r.code;
    const rValue = r.value;
    const rRef = r.ref;
    const rPatient = r.patient;
    const rSrc = r.srcValue;
    const payload = dicts.patients.payload;
    let d = 0;
    for (let i = from; i < to; i++) {
      if (drop !== null && d < drop.length && drop[d] === i) {
        d++;
        continue;
      }
      const c = rCode[i];
      day[o] = rDay[i];
      code[o] = (c & 0xffff) | (unitMap[c >>> 16] << 16);
      value[o] = rValue[i];
      if (ref) {
        ref[2 * o] = rRef[2 * i];
        ref[2 * o + 1] = rRef[2 * i + 1];
      }
      const p = resolve(rPatient[i], ids.patients);
      patient[o] = p;
      srcValue[o] = resolve(rSrc[i], ids.values);
      (patients[c & 0xff] ??= new Bitset()).add(payload[p * PATIENT_WORDS]);
      o++;
    }
    this.rows = o;
  }

  /** The accumulated rows as one batch; the builder is empty afterwards. */
  take(): Batch {
    const n = this.rows;
    const batch: Batch = {
      hospital: this.hospital,
      month: this.month,
      n,
      day: this.day.take(n),
      code: this.code.take(n),
      value: this.value.take(n),
      ref: this.ref.take(this.labs ? 2 * n : 0),
      patient: this.patient.take(n),
      srcValue: this.srcValue.take(n),
      units: this.units,
    };
    // Fresh, small columns: a partition's next batch may be much smaller, and
    // 240 partitions each keeping its largest capacity would defeat the memory bound.
    this.day = new Column((n) => new Int32Array(n));
    this.code = new Column((n) => new Uint32Array(n));
    this.value = new Column((n) => new Float64Array(n));
    this.ref = new Column((n) => new Float64Array(n));
    this.patient = new Column((n) => new Uint32Array(n));
    this.srcValue = new Column((n) => new Uint32Array(n));
    this.unitIds = new Map();
    this.units = [];
    this.rows = 0;
    return batch;
  }
}
