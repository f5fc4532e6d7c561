/**
 * The encode stage reuses its scratch arrays from one batch to the next
 * (src/sinks/encode.ts). Property: a batch encoded after any other batch
 * gives exactly the bytes, row group metadata and sketches it gives in a
 * fresh worker, for both datasets (labs has optional reference columns,
 * vitals an optional flag).
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { Dictionaries } from '../src/merge/dicts.js';
import { type Dataset, MEASURES } from '../src/registry.js';
import { hashBytes } from '../src/transform/bytetable.js';
import type { Batch, EncodeResult, EncodeTask } from '../src/types.js';

const PATIENTS = 300;
const VALUES = 50;
const dicts = new Dictionaries(1000);
const text = new TextEncoder();
for (let p = 0; p < PATIENTS; p++) {
  const key = text.encode(`H001|P${p}`);
  dicts.patients.add(key, 0, key.length, hashBytes(key, 0, key.length), [p, p * 7 + 1, p * 13 + 2, p * 17 + 3, p * 19 + 4]);
}
for (let v = 0; v < VALUES; v++) {
  const key = text.encode(`${v}.5`);
  dicts.values.add(key, 0, key.length, hashBytes(key, 0, key.length));
}

const rows = (dataset: Dataset) =>
  fc.array(
    fc.record({
      day: fc.integer({ min: 19700, max: 19730 }),
      measure: fc.integer({ min: 0, max: MEASURES[dataset].length - 1 }),
      flag: fc.integer({ min: 0, max: 3 }),
      unit: fc.integer({ min: 0, max: 1 }),
      value: fc.oneof(fc.integer({ min: 30, max: 200 }), fc.double({ min: -50, max: 500, noNaN: true })),
      low: fc.option(fc.double({ min: 0, max: 10, noNaN: true }), { nil: NaN }),
      high: fc.option(fc.double({ min: 10, max: 20, noNaN: true }), { nil: NaN }),
      patient: fc.integer({ min: 0, max: PATIENTS - 1 }),
      src: fc.integer({ min: 0, max: VALUES - 1 }),
    }),
    { minLength: 1, maxLength: 300 },
  );

type Row = { day: number; measure: number; flag: number; unit: number; value: number; low: number; high: number; patient: number; src: number };

function task(dataset: Dataset, rs: Row[]): EncodeTask {
  const batch = {
    hospital: 'H001',
    month: '2024-01',
    n: rs.length,
    day: Int32Array.from(rs, (r) => r.day),
    code: Uint32Array.from(rs, (r) => r.measure | (r.flag << 8) | (r.unit << 16)),
    value: Float64Array.from(rs, (r) => r.value),
    ref: dataset === 'labs' ? Float64Array.from(rs.flatMap((r) => [r.low, r.high])) : new Float64Array(0),
    patient: Uint32Array.from(rs, (r) => r.patient),
    srcValue: Uint32Array.from(rs, (r) => r.src),
    units: ['u0', 'u1'],
  } as Batch;
  return { kind: 'encode', attempt: 0, dataset, batch, dicts: dicts.state };
}

/** encodeBatch from a fresh copy of the module: no scratch from earlier batches. */
async function freshEncoder(): Promise<(t: EncodeTask) => EncodeResult> {
  vi.resetModules();
  return (await import('../src/sinks/encode.js')).encodeBatch;
}

const comparable = (r: EncodeResult) => ({ rows: r.rows, bytes: Array.from(r.bytes), rowGroup: r.rowGroup, sketches: r.sketches, bp: [r.bpPairs, r.bpViolations] });

describe('encodeBatch after other batches', () => {
  it.each<Dataset>(['vitals', 'labs'])('%s: the same row group and sketches as in a fresh worker', async (dataset) => {
    await fc.assert(
      fc.asyncProperty(fc.array(rows(dataset), { minLength: 1, maxLength: 3 }), rows(dataset), async (before, rs) => {
        const expected = comparable((await freshEncoder())(task(dataset, rs)));
        const encode = await freshEncoder();
        for (const b of before) encode(task(dataset, b));
        expect(comparable(encode(task(dataset, rs)))).toEqual(expected);
      }),
      { numRuns: 40 },
    );
  });
});
