/**
 * The second worker stage: one batch of a (hospital, month) partition, with
 * duplicates already dropped by the coordinator, becomes one Parquet row
 * group (bytes + its metadata, offsets relative to the bytes) and the
 * batch's statistics sketches. Pure apart from the clock.
 */
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { MEASURES } from '../registry.js';
import { FLAG_TEXT } from '../rules/fields.js';
import { MeasureSketch } from '../sketch/measure.js';
import type { EncodeResult, EncodeTask } from '../types.js';
import { curatedSchema } from './schema.js';

const SYSTOLIC = MEASURES.vitals.findIndex((m) => m.name === 'blood_pressure_systolic');
const DIASTOLIC = MEASURES.vitals.findIndex((m) => m.name === 'blood_pressure_diastolic');

/** The 32-bit number written by 8 hex digits of `s` at `at` (lowercase, as HMAC hex is). */
function hexWord(s: string, at: number): number {
  let x = 0;
  for (let i = at; i < at + 8; i++) {
    const c = s.charCodeAt(i);
    x = x * 16 + (c <= 57 ? c - 48 : c - 87);
  }
  return x;
}

export function encodeBatch(task: EncodeTask): EncodeResult {
  const t0 = performance.now();
  const labs = task.dataset === 'labs';
  const specs = MEASURES[task.dataset];
  const blk = task.block;
  const n = blk.n;

  const patientKey = new Array<string>(n);
  const type = new Array<string>(n);
  const unit = new Array<string>(n);
  const srcValue = new Array<string>(n);
  const srcUnit = new Array<string>(n);
  const flag = new Array<string | null>(n);
  const refLow = labs ? new Array<number | null>(n) : [];
  const refHigh = labs ? new Array<number | null>(n) : [];
  const sketches = new Map<number, { sketch: MeasureSketch; patients: Set<string> }>();
  // Systolic/diastolic pairing key: (patient, day, which) as one number.
  const bp = new Map<number, number>();
  let bpPairs = 0;
  let bpViolations = 0;

  const src = blk.srcValues;
  const keys = blk.patientKeys;
  // Systolic/diastolic pairs are matched per patient: a small id per distinct key.
  const patientIds = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const c = blk.code[i];
    const m = c & 0xff;
    const key = keys.slice(32 * i, 32 * i + 32);
    const v = blk.value[i];
    const f = (c >>> 8) & 0xff;
    patientKey[i] = key;
    type[i] = specs[m].name;
    unit[i] = specs[m].canonicalUnit;
    srcValue[i] = src.slice(i === 0 ? 0 : blk.srcValueEnd[i - 1], blk.srcValueEnd[i]);
    srcUnit[i] = blk.srcUnits[c >>> 16];
    flag[i] = FLAG_TEXT[f];
    if (labs) {
      const lo = blk.ref[2 * i];
      const hi = blk.ref[2 * i + 1];
      refLow[i] = Number.isNaN(lo) ? null : lo;
      refHigh[i] = Number.isNaN(hi) ? null : hi;
    }
    let s = sketches.get(m);
    if (!s) sketches.set(m, (s = { sketch: new MeasureSketch(), patients: new Set() }));
    s.sketch.add(v, f);
    s.patients.add(key);
    if (!labs && (m === SYSTOLIC || m === DIASTOLIC)) {
      let p = patientIds.get(key);
      if (p === undefined) patientIds.set(key, (p = patientIds.size));
      const base = (p * 65536 + (blk.day[i] & 0xffff)) * 2;
      const other = bp.get(base + (m === SYSTOLIC ? 0 : 1));
      if (other !== undefined) {
        bp.delete(base + (m === SYSTOLIC ? 0 : 1));
        bpPairs++;
        const sys = m === SYSTOLIC ? v : other;
        const dia = m === SYSTOLIC ? other : v;
        if (sys <= dia) bpViolations++;
      } else bp.set(base + (m === SYSTOLIC ? 1 : 0), v);
    }
  }
  const t1 = performance.now();

  const hospital = new Array<string>(n).fill(blk.hospital);
  const month = new Array<string>(n).fill(blk.month);
  const columns: Record<string, ArrayLike<unknown>> = labs
    ? { hospital_id: hospital, patient_key: patientKey, test_date: blk.day, month, test_type: type, value: blk.value, unit, ref_low: refLow, ref_high: refHigh, flag, source_value: srcValue, source_unit: srcUnit }
    : { hospital_id: hospital, patient_key: patientKey, measurement_date: blk.day, month, vital_type: type, value: blk.value, unit, source_value: srcValue, source_unit: srcUnit, flag };
  const writer = new ByteWriter(Math.max(1024, n * 24));
  // Min/max statistics only where readers prune on them (dates, values): string
  // statistics cost a sort-order pass per column and buy little here.
  const withStats = new Set(['measurement_date', 'test_date', 'value']);
  const pq = new ParquetWriter({ writer, schema: curatedSchema(task.dataset) as never, codec: 'SNAPPY', createdBy: 'healthcare-pipeline' });
  pq.write({
    // Dictionary encoding for every column, unconditionally: curated columns repeat
    // heavily, and forcing it skips the writer's sampling pass (docs/decisions/0001).
    columnData: Object.entries(columns).map(([name, data]) => ({ name, data: data as never, offsetIndex: false, statistics: withStats.has(name), encoding: 'RLE_DICTIONARY' as const })),
    rowGroupSize: Math.max(1, n),
  });
  const rowGroup = relocate(pq.row_groups[0], -4n);
  const bytes = new Uint8Array(writer.getBuffer().slice(4));
  const t2 = performance.now();

  const measures = [...sketches.keys()].sort((a, b) => a - b);
  return {
    kind: 'encode-result',
    rows: n,
    bytes,
    rowGroup,
    sketches: measures.map((m) => {
      const s = sketches.get(m)!;
      // The measure's distinct patients in this batch, as 128-bit keys.
      const words = new Uint32Array(4 * s.patients.size);
      let j = 0;
      for (const k of s.patients) for (let q = 0; q < 32; q += 8) words[j++] = hexWord(k, q);
      return { measure: m, state: s.sketch.toJSON(), patients: words };
    }),
    bpPairs,
    bpViolations,
    timings: { sketch: t1 - t0, parquet_encode: t2 - t1 },
  };
}

interface ColumnChunkLike {
  file_offset: bigint;
  meta_data?: { data_page_offset: bigint; dictionary_page_offset?: bigint };
}

/** Shifts every absolute offset in a row group's metadata by `delta` bytes. */
export function relocate<T>(rowGroup: T, delta: bigint): T {
  const rg = rowGroup as unknown as { columns: ColumnChunkLike[]; file_offset?: bigint };
  for (const c of rg.columns) {
    c.file_offset += delta;
    if (c.meta_data) {
      c.meta_data.data_page_offset += delta;
      if (c.meta_data.dictionary_page_offset !== undefined) c.meta_data.dictionary_page_offset += delta;
    }
  }
  if (rg.file_offset !== undefined) rg.file_offset += delta;
  return rowGroup;
}
