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
import { close, exactMoments } from './helpers.js';

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

/**
 * The batch statistics that read the patients: per measure, the set of the
 * rows' dense patient numbers (payload word 0, here the patient's own
 * number), and the blood-pressure pairs — a systolic and a diastolic of the
 * same patient and day, matched in row order — with how many have systolic
 * <= diastolic. Expected values computed here with string keys.
 */
describe('encodeBatch patient sets and blood-pressure pairs', () => {
  const SYS = MEASURES.vitals.findIndex((m) => m.name === 'blood_pressure_systolic');
  const DIA = MEASURES.vitals.findIndex((m) => m.name === 'blood_pressure_diastolic');
  // Mostly blood pressure, few patients and days, runs of one patient (visits): many pairs, repeats and near misses.
  const bpRows = fc
    .array(
      fc.record({
        patient: fc.integer({ min: 0, max: 6 }),
        day: fc.integer({ min: 19700, max: 19702 }),
        measures: fc.array(fc.oneof(fc.constant(SYS), fc.constant(DIA), fc.integer({ min: 0, max: MEASURES.vitals.length - 1 })), { minLength: 1, maxLength: 4 }),
        value: fc.integer({ min: 40, max: 200 }),
      }),
      { minLength: 1, maxLength: 60 },
    )
    .map((visits) => visits.flatMap((v, j) => v.measures.map((measure, k) => ({ day: v.day, measure, flag: 0, unit: 0, value: v.value + ((j * 7 + k * 13) % 50) - 25, low: NaN, high: NaN, patient: v.patient * 37, src: 0 }))));

  it('match sets and pairs computed directly', async () => {
    const encode = await freshEncoder();
    await fc.assert(
      fc.asyncProperty(fc.oneof(bpRows, rows('vitals')), async (rs) => {
        const r = encode(task('vitals', rs));
        const want = new Map<number, Set<number>>();
        for (const x of rs) (want.get(x.measure) ?? want.set(x.measure, new Set()).get(x.measure)!).add(x.patient);
        const got = new Map<number, Set<number>>();
        for (const { measure, words } of r.patientSets) {
          const s = new Set<number>();
          words.forEach((w, i) => {
            for (let bit = 0; bit < 32; bit++) if ((w >>> bit) & 1) s.add(32 * i + bit);
          });
          got.set(measure, s);
        }
        expect(got).toEqual(want);
        const open = new Map<string, number>();
        let pairs = 0;
        let violations = 0;
        for (const x of rs) {
          if (x.measure !== SYS && x.measure !== DIA) continue;
          const other = `${x.patient}/${x.day}/${x.measure === SYS ? 'dia' : 'sys'}`;
          const waiting = open.get(other);
          if (waiting === undefined) {
            open.set(`${x.patient}/${x.day}/${x.measure === SYS ? 'sys' : 'dia'}`, x.value);
            continue;
          }
          open.delete(other);
          pairs++;
          if ((x.measure === SYS ? x.value : waiting) <= (x.measure === SYS ? waiting : x.value)) violations++;
        }
        expect([r.bpPairs, r.bpViolations]).toEqual([pairs, violations]);
      }),
      { numRuns: 200 },
    );
  });
});

/**
 * Each measure's exact histogram in the batch's sketches: the distinct
 * values ascending with how often each occurs, −0 and 0 counted as one
 * value (shown as −0 when the batch has one, as a sorted typed array
 * would), whether a measure's values are few and repeated (counted by value
 * first) or mostly distinct (sorted). Expected values computed here with a
 * Map and a comparator sort.
 */
describe('encodeBatch value histograms', () => {
  const few = fc.oneof(fc.constantFrom(-0, 0, 36.6, 37, 120, 80.5), fc.integer({ min: 30, max: 40 }));
  const many = fc.double({ min: -50, max: 500, noNaN: true });
  // Repeated values only (the counting path), or with some of every kind (past a quarter distinct: the sorting path).
  const histRows = (value: fc.Arbitrary<number>) =>
    fc.array(fc.record({ measure: fc.integer({ min: 0, max: 2 }), value, patient: fc.integer({ min: 0, max: PATIENTS - 1 }) }), { minLength: 40, maxLength: 400, size: 'max' });
  const batches = fc.oneof(histRows(few), histRows(fc.oneof({ arbitrary: few, weight: 4 }, { arbitrary: many, weight: 1 })), histRows(many.map(Math.round)));

  it('match histograms computed directly', async () => {
    const encode = await freshEncoder();
    await fc.assert(
      fc.asyncProperty(batches, async (hs) => {
        const rs = hs.map((h) => ({ day: 19700, measure: h.measure, flag: 0, unit: 0, value: h.value, low: NaN, high: NaN, patient: h.patient, src: 0 }));
        const r = encode(task('vitals', rs));
        for (let m = 0; m < 3; m++) {
          const mine = rs.filter((x) => x.measure === m).map((x) => x.value);
          const state = r.sketches.find((s) => s.measure === m)?.state.quantiles;
          if (mine.length === 0) {
            expect(state).toBeUndefined();
            continue;
          }
          const tally = new Map<number, number>();
          for (const v of mine) tally.set(v === 0 ? 0 : v, (tally.get(v === 0 ? 0 : v) ?? 0) + 1);
          const keys = [...tally.keys()].sort((a, b) => a - b);
          const shown = (v: number) => (v === 0 && mine.some((x) => Object.is(x, -0)) ? -0 : v);
          expect(state?.kind).toBe('exact');
          if (state?.kind !== 'exact') continue;
          expect(Array.from(state.values)).toEqual(keys.map(shown));
          expect(Array.from(state.counts)).toEqual(keys.map((k) => tally.get(k)));
        }
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * Each measure's moments in the batch's sketches against the exact mean and
 * sample stddev (exactMoments: BigInt sums), within SPEC §4's 1e-9 relative
 * and nothing absolute: spreads from 1e-12 of the mean (values that differ
 * in their last digits, as `299.990001`, `299.990002`…) to wide ones, a
 * single value repeated (stddev exactly 0), few values or many distinct.
 */
describe('encodeBatch moments', () => {
  const tight = fc
    .record({
      base: fc.double({ min: 1, max: 500, noNaN: true }),
      step: fc.constantFrom(1e-12, 1e-9, 1e-7, 1e-6, 1e-3, 1, 37),
      offsets: fc.array(fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 1_000_000 })), { minLength: 1, maxLength: 400 }),
    })
    .map(({ base, step, offsets }) => offsets.map((k) => base + k * step));
  const wide = fc.array(fc.double({ min: 0.01, max: 2000, noNaN: true }), { minLength: 1, maxLength: 400 });

  it.each<[string, number[]]>([
    ['one value repeated', Array(250).fill(299.99)],
    ['two values 1e-6 apart, near a bound', Array.from({ length: 300 }, (_, i) => (i % 3 ? 299.99 : 299.990001))],
    ['ten values 1e-6 apart (stddev ~3e-8 of the mean)', Array.from({ length: 200 }, (_, i) => 299.99 + ((i * 7) % 10) * 1e-6)],
    ['a single row', [72]],
  ])('%s', async (_, values) => {
    const encode = await freshEncoder();
    const rs = values.map((value, i) => ({ day: 19700, measure: 0, flag: 0, unit: 0, value, low: NaN, high: NaN, patient: i % PATIENTS, src: 0 }));
    expectExactMoments(encode(task('vitals', rs)).sketches[0].state.moments, values);
  });

  it('property: mean and stddev within 1e-9 relative of the exact values', async () => {
    const encode = await freshEncoder();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(tight, wide), { minLength: 1, maxLength: 3 }), async (groups) => {
        const rs = groups.flatMap((vs, m) => vs.map((value, i) => ({ day: 19700, measure: m, flag: 0, unit: 0, value, low: NaN, high: NaN, patient: i % PATIENTS, src: 0 })));
        const r = encode(task('vitals', rs));
        groups.forEach((vs, m) => expectExactMoments(r.sketches.find((s) => s.measure === m)!.state.moments, vs));
      }),
      { numRuns: 300 },
    );
  });
});

function expectExactMoments(got: { n: number; mean: number; m2: number }, values: number[]) {
  const want = exactMoments(values);
  expect(got.n).toBe(want.n);
  expect(close(got.mean, want.mean!, 1e-9), `mean ${got.mean} vs ${want.mean}`).toBe(true);
  const sd = got.n < 2 ? null : Math.sqrt(got.m2 / (got.n - 1));
  if (want.stddev === null || want.stddev === 0) expect(sd).toBe(want.stddev);
  else expect(close(sd!, want.stddev, 1e-9), `stddev ${sd} vs ${want.stddev} (n ${got.n})`).toBe(true);
}
