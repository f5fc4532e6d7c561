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

export function encodeBatch(task: EncodeTask): EncodeResult {
  const t0 = performance.now();
  const labs = task.dataset === 'labs';
  const specs = MEASURES[task.dataset];
  let n = 0;
  for (let b = 0; b < task.blocks.length; b++) n += task.blocks[b].n - (task.drop[b]?.length ?? 0);

  const patientKey = new Array<string>(n);
  const day = new Int32Array(n);
  const type = new Array<string>(n);
  const value = new Float64Array(n);
  const unit = new Array<string>(n);
  const srcValue = new Array<string>(n);
  const srcUnit = new Array<string>(n);
  const flag = new Array<string | null>(n);
  const refLow = labs ? new Array<number | null>(n) : [];
  const refHigh = labs ? new Array<number | null>(n) : [];
  const sketches = new Map<number, { sketch: MeasureSketch; patients: Set<string> }>();
  const hex = (bytes: Uint8Array, i: number) => Buffer.from(bytes.buffer, bytes.byteOffset + i * 16, 16).toString('hex');
  const bp = new Map<string, number>();
  let bpPairs = 0;
  let bpViolations = 0;

  let o = 0;
  for (let b = 0; b < task.blocks.length; b++) {
    const blk = task.blocks[b];
    const drop = task.drop[b];
    let d = 0;
    const src = blk.srcValues;
    const keys = new Array<string>(blk.patientKeyBytes.length / 16);
    for (let k = 0; k < keys.length; k++) keys[k] = hex(blk.patientKeyBytes, k);
    for (let i = 0; i < blk.n; i++) {
      if (drop && d < drop.length && drop[d] === i) {
        d++;
        continue;
      }
      const c = blk.code[i];
      const m = c & 0xff;
      const key = keys[blk.patient[i]];
      const v = blk.value[i];
      const f = (c >>> 8) & 0xff;
      patientKey[o] = key;
      day[o] = blk.day[i];
      type[o] = specs[m].name;
      value[o] = v;
      unit[o] = specs[m].canonicalUnit;
      srcValue[o] = src.slice(i === 0 ? 0 : blk.srcValueEnd[i - 1], blk.srcValueEnd[i]);
      srcUnit[o] = blk.srcUnits[c >>> 16];
      flag[o] = FLAG_TEXT[f];
      if (labs) {
        const lo = blk.ref[2 * i];
        const hi = blk.ref[2 * i + 1];
        refLow[o] = Number.isNaN(lo) ? null : lo;
        refHigh[o] = Number.isNaN(hi) ? null : hi;
      }
      let s = sketches.get(m);
      if (!s) {
        s = { sketch: new MeasureSketch(), patients: new Set() };
        sketches.set(m, s);
      }
      s.sketch.add(v, f);
      s.patients.add(key);
      if (!labs && (m === SYSTOLIC || m === DIASTOLIC)) {
        // Pair systolic with diastolic of the same patient and date.
        const k = `${key}|${blk.day[i]}|${m === SYSTOLIC ? DIASTOLIC : SYSTOLIC}`;
        const other = bp.get(k);
        if (other !== undefined) {
          bp.delete(k);
          bpPairs++;
          const sys = m === SYSTOLIC ? v : other;
          const dia = m === SYSTOLIC ? other : v;
          if (sys <= dia) bpViolations++;
        } else bp.set(`${key}|${blk.day[i]}|${m}`, v);
      }
      o++;
    }
  }
  const t1 = performance.now();

  const hospital = new Array<string>(n).fill(task.hospital);
  const month = new Array<string>(n).fill(task.month);
  const columns: Record<string, ArrayLike<unknown>> = labs
    ? { hospital_id: hospital, patient_key: patientKey, test_date: day, month, test_type: type, value, unit, ref_low: refLow, ref_high: refHigh, flag, source_value: srcValue, source_unit: srcUnit }
    : { hospital_id: hospital, patient_key: patientKey, measurement_date: day, month, vital_type: type, value, unit, source_value: srcValue, source_unit: srcUnit, flag };
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
      const packed = new Uint8Array(s.patients.size * 16);
      const view = Buffer.from(packed.buffer);
      let j = 0;
      for (const k of s.patients) view.write(k, 16 * j++, 16, 'hex');
      return { measure: m, state: s.sketch.toJSON(), patients: packed };
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
