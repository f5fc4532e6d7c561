/**
 * The second worker stage: one batch of a (hospital, month) partition, with
 * duplicates already dropped by the coordinator, becomes one Parquet row
 * group (bytes + its metadata, offsets relative to the bytes) and the
 * batch's statistics sketches. Pure apart from the clock; reads patient keys
 * and source values from the shared dictionaries.
 */
import { batchBuffers } from '../merge/batch.js';
import { MEASURES } from '../registry.js';
import { FLAG_NONE, FLAG_TEXT } from '../rules/fields.js';
import { MeasureSketch } from '../sketch/measure.js';
import { histogramMoments } from '../sketch/moments.js';
import { QuantileSketch } from '../sketch/quantiles.js';
import { ByteTable, type TableState } from '../transform/bytetable.js';
import { type EncodeResult, type EncodeTask, PATIENT_WORDS } from '../types.js';
import { Bytes, type ColumnMeta, writeColumnChunk } from './pages.js';

const SYSTOLIC = MEASURES.vitals.findIndex((m) => m.name === 'blood_pressure_systolic');
const DIASTOLIC = MEASURES.vitals.findIndex((m) => m.name === 'blood_pressure_diastolic');
const HEX = new TextEncoder().encode('0123456789abcdef');
const utf8 = new TextEncoder();

/**
 * Dense dictionary indices for 64-bit keys (two 32-bit halves), in order of
 * first appearance: one open-addressing table, no object per key.
 */
class KeyIndex {
  private slots: Int32Array;
  private hi: Int32Array;
  private lo: Int32Array;
  private mask: number;
  size = 0;
  /** The keys, in index order. */
  keysHi: Int32Array;
  keysLo: Int32Array;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Int32Array(cap);
    this.hi = this.keysHi = new Int32Array(cap);
    this.lo = this.keysLo = new Int32Array(cap);
    this.mask = cap - 1;
  }

  /** Empties the index, keeping its capacity. */
  reset(): void {
    this.slots.fill(0);
    this.size = 0;
  }

  index(hi: number, lo: number): number {
    let i = this.slot(hi, lo);
    for (;;) {
      const v = this.slots[i];
      if (v === 0) break;
      if (this.hi[v - 1] === hi && this.lo[v - 1] === lo) return v - 1;
      i = (i + 1) & this.mask;
    }
    const id = this.size++;
    this.hi[id] = hi;
    this.lo[id] = lo;
    this.slots[i] = id + 1;
    if (this.size * 2 > this.slots.length) this.grow();
    return id;
  }

  private grow(): void {
    const cap = this.slots.length * 2;
    const hi = new Int32Array(cap);
    const lo = new Int32Array(cap);
    hi.set(this.hi);
    lo.set(this.lo);
    this.hi = this.keysHi = hi;
    this.lo = this.keysLo = lo;
    this.slots = new Int32Array(cap);
    this.mask = cap - 1;
    for (let id = 0; id < this.size; id++) {
      let i = this.slot(hi[id], lo[id]);
      while (this.slots[i] !== 0) i = (i + 1) & this.mask;
      this.slots[i] = id + 1;
    }
  }

  private slot(hi: number, lo: number): number {
    return (Math.imul(hi ^ Math.imul(lo, 0x9e3779b1), 0x85ebca6b) >>> 7) & this.mask;
  }
}

/**
 * Worker-local scratch arrays, reused from one batch to the next (grown,
 * never shrunk): encoding a batch then allocates little beyond its output.
 * Fresh arrays per batch were a few MB each, dead until the worker's next
 * garbage collection — which V8 starts for off-heap memory only every few
 * tens of MB — and the allocator kept that high-water mark as resident memory.
 */
const scratchU32 = { indices: new Uint32Array(0), defined: new Uint32Array(0), zeros: new Uint32Array(0), dense: new Uint32Array(0), patients: new Uint32Array(0) };
const scratchF64 = { sorted: new Float64Array(0), values: new Float64Array(0), counts: new Float64Array(0), tally: new Float64Array(0), distinct: new Float64Array(0) };

/** `n` elements of a reused Uint32Array scratch; `defined` and `zeros` come zeroed, the others hold anything. */
function reuseU32(name: keyof typeof scratchU32, n: number): Uint32Array {
  let a = scratchU32[name];
  if (a.length < n) scratchU32[name] = a = new Uint32Array(Math.max(n, 2 * a.length));
  const view = a.subarray(0, n);
  if (name === 'defined') view.fill(0);
  return view;
}

/** `n` elements of a reused Float64Array scratch (contents undefined). */
function reuseF64(name: keyof typeof scratchF64, n: number): Float64Array {
  let a = scratchF64[name];
  if (a.length < n) scratchF64[name] = a = new Float64Array(Math.max(n, 2 * a.length));
  return a.subarray(0, n);
}

/** The row group's bytes and the patient key index, reused the same way. */
const reusedOut = new Bytes(1 << 16);
const patientIndex = new KeyIndex(1 << 12);

// Reads a double's bits without allocating.
const F64 = new Float64Array(1);
const U32 = new Int32Array(F64.buffer);

/** A dictionary-encoded double column: indices per non-null value, dictionary of distinct values. */
function doubleColumn(values: Float64Array, n: number, stride: number, offset: number, optional: boolean) {
  const index = new KeyIndex(Math.min(n, 4096));
  const indices = reuseU32('indices', n);
  const defined = optional ? reuseU32('defined', n) : null;
  let nonNull = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[stride * i + offset];
    if (v !== v) continue; // NaN: null (an open reference bound)
    if (defined) defined[i] = 1;
    F64[0] = v;
    indices[nonNull++] = index.index(U32[1], U32[0]);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const dict = new Bytes(8 * index.size + 8);
  for (let k = 0; k < index.size; k++) {
    U32[1] = index.keysHi[k];
    U32[0] = index.keysLo[k];
    dict.f64(F64[0]);
  }
  return { dict, count: index.size, indices, nonNull, defined, min, max };
}

/** PLAIN BYTE_ARRAY dictionary of strings. */
function stringDict(strings: readonly string[]): Bytes {
  const d = new Bytes(64);
  for (const s of strings) {
    const b = utf8.encode(s);
    d.u32(b.length);
    d.bytes(b);
  }
  return d;
}

let sharedViews: { patients: ByteTable; values: ByteTable; p: TableState; v: TableState } | null = null;

function views(task: EncodeTask): { patients: ByteTable; values: ByteTable } {
  const { patients, values } = task.dicts;
  if (!sharedViews || sharedViews.p.slots !== patients.slots || sharedViews.p.pool !== patients.pool || sharedViews.v.slots !== values.slots || sharedViews.v.pool !== values.pool) {
    sharedViews = { patients: ByteTable.view(patients), values: ByteTable.view(values), p: patients, v: values };
  }
  return sharedViews;
}

/**
 * The batch's statistics, one sketch per measure present: counts and
 * extremes value by value in row order (MeasureSketch.addCounts), and the
 * exact histogram of each measure's values (countDistinct, else sorted),
 * with the moments computed from it (histogramMoments).
 */
function sketchBatch(code: Uint32Array, value: Float64Array, n: number, measures: number): (MeasureSketch | undefined)[] {
  const out: (MeasureSketch | undefined)[] = [];
  const count = new Int32Array(measures);
  for (let i = 0; i < n; i++) {
    const c = code[i];
    const m = c & 0xff;
    (out[m] ??= new MeasureSketch()).addCounts(value[i], (c >>> 8) & 0xff);
    count[m]++;
  }
  // Each measure's values in one segment, then its histogram (values ascending, with their counts).
  const start = new Int32Array(measures + 1);
  for (let m = 0; m < measures; m++) start[m + 1] = start[m] + count[m];
  const at = start.slice(0, measures);
  const sorted = reuseF64('sorted', n);
  for (let i = 0; i < n; i++) sorted[at[code[i] & 0xff]++] = value[i];
  out.forEach((s, m) => {
    if (!s) return;
    const seg = sorted.subarray(start[m], start[m + 1]);
    const values = reuseF64('values', seg.length);
    const counts = reuseF64('counts', seg.length);
    let k = countDistinct(seg, values, counts);
    if (k < 0) {
      // Too many distinct values to gain from counting first: sort them all, then count runs.
      seg.sort();
      k = 0;
      for (let i = 0; i < seg.length; i++) k = addToHistogram(values, counts, k, seg[i], 1);
    }
    s.moments = histogramMoments(values, counts, k);
    s.quantiles = QuantileSketch.fromSorted(values.slice(0, k), counts.slice(0, k), k);
  });
  return out;
}

/** Distinct values of one measure's segment, counted by their bits (see countDistinct). */
const distinctIndex = new KeyIndex(1 << 10);

/**
 * The histogram of `seg` — its distinct values ascending in `values`, how
 * often each occurs in `counts` — as sorting `seg` and counting runs of
 * equal (===) values would give it; returns how many. Counts by the values'
 * bits first and sorts only the distinct ones (a measure has a few hundred
 * in a month); −1, with `seg` untouched, when there are more than a quarter
 * as many distinct values as values, or a NaN (which the runs would never
 * merge), so the caller sorts instead.
 */
function countDistinct(seg: Float64Array, values: Float64Array, counts: Float64Array): number {
  const index = distinctIndex;
  index.reset();
  const limit = seg.length >>> 2;
  const tally = reuseF64('tally', seg.length);
  for (let i = 0; i < seg.length; i++) {
    const v = seg[i];
    if (v !== v) return -1;
    F64[0] = v;
    const before = index.size;
    const id = index.index(U32[1], U32[0]);
    if (id === before) {
      if (before === limit) return -1;
      tally[id] = 1;
    } else tally[id]++;
  }
  const d = index.size;
  const distinct = reuseF64('distinct', d);
  for (let j = 0; j < d; j++) {
    U32[1] = index.keysHi[j];
    U32[0] = index.keysLo[j];
    distinct[j] = F64[0];
  }
  distinct.sort();
  // Ascending; −0 and 0 (two bit patterns, one value) become one entry, as in a run.
  let k = 0;
  for (let j = 0; j < d; j++) {
    const v = distinct[j];
    F64[0] = v;
    k = addToHistogram(values, counts, k, v, tally[index.index(U32[1], U32[0])]);
  }
  return k;
}

/**
 * Appends value `v`, seen `c` times, to the histogram values/counts[0, k)
 * (built in ascending order): merged into the last entry when equal (===,
 * so −0 joins 0). Returns the new length.
 */
function addToHistogram(values: Float64Array, counts: Float64Array, k: number, v: number, c: number): number {
  if (k > 0 && values[k - 1] === v) {
    counts[k - 1] += c;
    return k;
  }
  values[k] = v;
  counts[k] = c;
  return k + 1;
}

/**
 * The batch's patients: for each row, the index of its patient among the
 * batch's distinct patients (in order of first appearance, `patientIndex`
 * holds their entry ids). A visit's rows are adjacent and share a patient,
 * so a row with the previous row's patient skips the lookup.
 */
function batchPatients(b: EncodeTask['batch']): Uint32Array {
  const index = patientIndex;
  index.reset();
  const rows = reuseU32('patients', b.n);
  const patient = b.patient;
  let last = -1;
  let at = 0;
  for (let i = 0; i < b.n; i++) {
    const p = patient[i];
    if (p !== last) {
      at = index.index(p, 0);
      last = p;
    }
    rows[i] = at;
  }
  return rows;
}

/**
 * Systolic/diastolic pairs (same patient and date) in the batch, and how
 * many have systolic <= diastolic. `rows` are the rows' batch patients
 * (batchPatients), so the keys stay small integers for a batch's days.
 */
function bloodPressurePairs(b: EncodeTask['batch'], rows: Uint32Array): { pairs: number; violations: number } {
  let minDay = Infinity;
  let maxDay = -Infinity;
  for (let i = 0; i < b.n; i++) {
    const d = b.day[i];
    if (d < minDay) minDay = d;
    if (d > maxDay) maxDay = d;
  }
  const days = maxDay - minDay + 1;
  const bp = new Map<number, number>();
  let pairs = 0;
  let violations = 0;
  for (let i = 0; i < b.n; i++) {
    const m = b.code[i] & 0xff;
    if (m !== SYSTOLIC && m !== DIASTOLIC) continue;
    const v = b.value[i];
    // (batch patient, day, which) as one number: a small integer for one month's batch.
    const base = (rows[i] * days + (b.day[i] - minDay)) * 2;
    const mine = base + (m === SYSTOLIC ? 0 : 1);
    const other = bp.get(mine);
    if (other !== undefined) {
      bp.delete(mine);
      pairs++;
      const sys = m === SYSTOLIC ? v : other;
      const dia = m === SYSTOLIC ? other : v;
      if (sys <= dia) violations++;
    } else bp.set(base + (m === SYSTOLIC ? 1 : 0), v);
  }
  return { pairs, violations };
}

/**
 * The batch's distinct patients (patientIndex, from batchPatients), read
 * once each from the shared dictionary: the patient_key column's
 * dictionary (each 128-bit key as 32 hex digits, PLAIN-encoded) and, in
 * scratch `dense`, each one's dense number within its hospital (payload word
 * 0). Both from the same entry, so one memory access per patient.
 */
function patientKeys(payload: Uint32Array): { dict: Bytes; dense: Uint32Array; max: number } {
  const index = patientIndex;
  const d = index.size;
  const dense = reuseU32('dense', d);
  const dict = new Bytes(36 * d + 8);
  let max = 0;
  for (let k = 0; k < d; k++) {
    const base = index.keysHi[k] * PATIENT_WORDS;
    const n = payload[base];
    dense[k] = n;
    if (n > max) max = n;
    dict.u32(32); // the value's length
    dict.reserve(32);
    const buf = dict.buf;
    let at = dict.length;
    for (let w = 1; w <= 4; w++) {
      const x = payload[base + w];
      for (let s = 24; s >= 0; s -= 8) {
        const byte = (x >>> s) & 255;
        buf[at++] = HEX[byte >>> 4];
        buf[at++] = HEX[byte & 15];
      }
    }
    dict.length = at;
  }
  return { dict, dense, max };
}

/**
 * Per measure present: the batch's patients as bitset words over their
 * hospitals' dense numbers (`dense` per distinct patient, from
 * patientKeys); the coordinator ORs them into the partition's sets for
 * n_patients.
 */
function patientSets(b: EncodeTask['batch'], rows: Uint32Array, dense: Uint32Array, max: number, measures: number): { measure: number; words: Uint32Array }[] {
  const sets: Uint32Array[] = new Array(measures);
  const length = (max >>> 5) + 1;
  for (let i = 0; i < b.n; i++) {
    const d = dense[rows[i]];
    (sets[b.code[i] & 0xff] ??= new Uint32Array(length))[d >>> 5] |= 1 << (d & 31);
  }
  const out: { measure: number; words: Uint32Array }[] = [];
  sets.forEach((words, measure) => out.push({ measure, words }));
  return out;
}

export function encodeBatch(task: EncodeTask): EncodeResult {
  const t0 = performance.now();
  const labs = task.dataset === 'labs';
  const specs = MEASURES[task.dataset];
  const b = task.batch;
  const n = b.n;
  const { patients, values } = views(task);

  const sketches = sketchBatch(b.code, b.value, n, specs.length);
  const batchRows = batchPatients(b);
  const bp = labs ? { pairs: 0, violations: 0 } : bloodPressurePairs(b, batchRows);
  const keys = patientKeys(patients.payload);
  const sets = patientSets(b, batchRows, keys.dense, keys.max, specs.length);
  const t1 = performance.now();

  // ---- the row group, column by column (curated schema order, src/sinks/schema.ts).
  const out = reusedOut;
  out.length = 0;
  const scratch = new Bytes(64);
  const columns: ColumnMeta[] = [];
  const constant = (name: string, value: string) => columns.push(writeColumnChunk(out, name, 'BYTE_ARRAY', n, stringDict([value]), 1, reuseU32('zeros', n), n, null, scratch));

  /**
   * A string column from small codes (measure, flag, unit: (code >>> shift)
   * & mask, below `size`): dictionary in order of first appearance; `text`
   * null means a null value (optional columns).
   */
  const byCode = (name: string, shift: number, mask: number, size: number, text: (code: number) => string | null, optional: boolean) => {
    const slot = new Int32Array(size).fill(-1);
    const strings: string[] = [];
    const indices = reuseU32('indices', n);
    const defined = optional ? reuseU32('defined', n) : null;
    const code = b.code;
    let nonNull = 0;
    for (let i = 0; i < n; i++) {
      const k = (code[i] >>> shift) & mask;
      let d = slot[k];
      if (d === -1) {
        const s = text(k);
        d = s === null ? -2 : strings.push(s) - 1;
        slot[k] = d;
      }
      if (d === -2) continue;
      if (defined) defined[i] = 1;
      indices[nonNull++] = d;
    }
    columns.push(writeColumnChunk(out, name, 'BYTE_ARRAY', n, stringDict(strings), strings.length, indices, nonNull, defined, scratch));
  };

  const dates = (name: string) => {
    const index = new KeyIndex(64);
    const indices = reuseU32('indices', n);
    const day = b.day;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const d = day[i];
      indices[i] = index.index(d, 0);
      if (d < min) min = d;
      if (d > max) max = d;
    }
    const dict = new Bytes(4 * index.size + 4);
    for (let k = 0; k < index.size; k++) dict.i32(index.keysHi[k]);
    columns.push(writeColumnChunk(out, name, 'INT32', n, dict, index.size, indices, n, null, scratch, n > 0 ? { min, max } : undefined));
  };

  const doubles = (name: string, src: Float64Array, stride: number, offset: number, optional: boolean, stats: boolean) => {
    const c = doubleColumn(src, n, stride, offset, optional);
    columns.push(writeColumnChunk(out, name, 'DOUBLE', n, c.dict, c.count, c.indices, c.nonNull, c.defined, scratch, stats && c.nonNull > 0 ? { min: c.min, max: c.max } : undefined));
  };

  const sourceValues = () => {
    const index = new KeyIndex(Math.min(n, 4096));
    const indices = reuseU32('indices', n);
    const src = b.srcValue;
    for (let i = 0; i < n; i++) indices[i] = index.index(src[i], 0);
    const dict = new Bytes(64);
    for (let k = 0; k < index.size; k++) {
      const id = index.keysHi[k];
      const s = values.offsets[id];
      const e = values.offsets[id + 1];
      dict.u32(e - s);
      dict.bytes(values.pool, s, e);
    }
    columns.push(writeColumnChunk(out, 'source_value', 'BYTE_ARRAY', n, dict, index.size, indices, n, null, scratch));
  };

  const flagText = (f: number) => (f === FLAG_NONE ? null : FLAG_TEXT[f]);
  const units = b.units;

  constant('hospital_id', b.hospital);
  columns.push(writeColumnChunk(out, 'patient_key', 'BYTE_ARRAY', n, keys.dict, patientIndex.size, batchRows, n, null, scratch));
  dates(labs ? 'test_date' : 'measurement_date');
  constant('month', b.month);
  byCode(labs ? 'test_type' : 'vital_type', 0, 0xff, 256, (m) => specs[m].name, false);
  doubles('value', b.value, 1, 0, false, true);
  byCode('unit', 0, 0xff, 256, (m) => specs[m].canonicalUnit, false);
  if (labs) {
    doubles('ref_low', b.ref, 2, 0, true, false);
    doubles('ref_high', b.ref, 2, 1, true, false);
    byCode('flag', 8, 0xff, 256, flagText, false);
    sourceValues();
    byCode('source_unit', 16, 0xffff, units.length, (u) => units[u], false);
  } else {
    sourceValues();
    byCode('source_unit', 16, 0xffff, units.length, (u) => units[u], false);
    byCode('flag', 8, 0xff, 256, flagText, true);
  }
  let total = 0n;
  for (const c of columns) total += c.meta_data.total_uncompressed_size;
  const rowGroup = { columns, total_byte_size: total, num_rows: BigInt(n), total_compressed_size: total, file_offset: 0n };
  const bytes = out.buf.slice(0, out.length);
  const t2 = performance.now();

  const states: { measure: number; state: ReturnType<MeasureSketch['toJSON']> }[] = [];
  sketches.forEach((s, m) => {
    if (s) states.push({ measure: m, state: s.toTransfer() });
  });
  return {
    kind: 'encode-result',
    recycled: batchBuffers(b),
    rows: n,
    bytes,
    rowGroup,
    sketches: states,
    bpPairs: bp.pairs,
    bpViolations: bp.violations,
    patientSets: sets,
    timings: { sketch: t1 - t0, parquet_encode: t2 - t1 },
  };
}
