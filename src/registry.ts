/**
 * The measure registry: every vital sign and lab test the pipeline accepts,
 * with its canonical unit, accepted unit spellings (and how to convert them),
 * plausible range (outside: reject) and normal/reference range (flag only).
 *
 * SPEC §2 tables live here and nowhere else. Adding a measure is adding an
 * entry: the parser, rules, statistics and report all read this table.
 */

export type Dataset = 'vitals' | 'labs';
export const DATASETS: readonly Dataset[] = ['vitals', 'labs'];

/** Converts a value in an accepted unit to the canonical unit. */
export type Convert = (x: number) => number;

export interface UnitSpec {
  /** Spelling as it appears in the file (matched case-sensitively after trimming). */
  readonly unit: string;
  readonly convert: Convert;
}

export interface MeasureSpec {
  readonly name: string;
  readonly canonicalUnit: string;
  /** Non-canonical spellings and conversions; the canonical unit is always accepted, in any case. */
  readonly alternatives: readonly UnitSpec[];
  readonly plausible: readonly [number, number];
  /** Vitals: normal range for the L/N/H flag (null: no flag). Labs: default reference range. */
  readonly normal: readonly [number, number] | null;
}

const identity: Convert = (x) => x;
const fahrenheitToCelsius: Convert = (f) => ((f - 32) * 5) / 9;
const times = (k: number): Convert => (x) => x * k;
const divide = (k: number): Convert => (x) => x / k;

const alt = (convert: Convert, ...units: string[]): UnitSpec[] => units.map((unit) => ({ unit, convert }));

export const VITALS: readonly MeasureSpec[] = [
  { name: 'heart_rate', canonicalUnit: 'bpm', alternatives: alt(identity, '/min', 'beats/min'), plausible: [20, 300], normal: [60, 100] },
  { name: 'blood_pressure_systolic', canonicalUnit: 'mmHg', alternatives: alt(identity, 'mm[Hg]'), plausible: [40, 300], normal: [90, 120] },
  { name: 'blood_pressure_diastolic', canonicalUnit: 'mmHg', alternatives: alt(identity, 'mm[Hg]'), plausible: [20, 200], normal: [60, 80] },
  { name: 'respiratory_rate', canonicalUnit: 'breaths/min', alternatives: alt(identity, '/min'), plausible: [2, 80], normal: [12, 20] },
  {
    name: 'temperature',
    canonicalUnit: 'celsius',
    alternatives: [...alt(identity, 'C', '°C', 'Cel'), ...alt(fahrenheitToCelsius, 'fahrenheit', 'F', '°F', '[degF]')],
    plausible: [25, 45],
    normal: [36.1, 37.8],
  },
  { name: 'oxygen_saturation', canonicalUnit: '%', alternatives: [], plausible: [50, 100], normal: [95, 100] },
  { name: 'weight', canonicalUnit: 'kg', alternatives: alt(times(0.45359237), 'lb', '[lb_av]'), plausible: [0.3, 500], normal: null },
  { name: 'height', canonicalUnit: 'cm', alternatives: [...alt(times(2.54), 'in', '[in_i]'), ...alt(times(100), 'm')], plausible: [20, 275], normal: null },
];

export const LABS: readonly MeasureSpec[] = [
  { name: 'glucose', canonicalUnit: 'mg/dL', alternatives: alt(times(18.016), 'mmol/L'), plausible: [10, 2000], normal: [70, 100] },
  { name: 'cholesterol', canonicalUnit: 'mg/dL', alternatives: alt(times(38.67), 'mmol/L'), plausible: [20, 1000], normal: [125, 200] },
  { name: 'hba1c', canonicalUnit: '%', alternatives: alt((x) => x / 10.929 + 2.15, 'mmol/mol'), plausible: [3, 20], normal: [4.0, 5.6] },
  { name: 'creatinine', canonicalUnit: 'mg/dL', alternatives: alt(divide(88.4), 'umol/L', 'µmol/L'), plausible: [0.1, 25], normal: [0.6, 1.2] },
  { name: 'hemoglobin', canonicalUnit: 'g/dL', alternatives: alt(divide(10), 'g/L'), plausible: [2, 25], normal: [12.0, 17.5] },
  { name: 'sodium', canonicalUnit: 'mmol/L', alternatives: alt(identity, 'mEq/L'), plausible: [90, 200], normal: [135, 145] },
  { name: 'potassium', canonicalUnit: 'mmol/L', alternatives: alt(identity, 'mEq/L'), plausible: [1, 12], normal: [3.5, 5.1] },
];

export const MEASURES: Readonly<Record<Dataset, readonly MeasureSpec[]>> = { vitals: VITALS, labs: LABS };

/** A measure with its lookups precomputed for the hot path. */
export interface MeasureIndex {
  readonly specs: readonly MeasureSpec[];
  /** measure name → index into specs */
  readonly byName: ReadonlyMap<string, number>;
  /** Resolve a trimmed unit for measure i: the conversion, or undefined when not allowed. */
  unitFor(i: number, unit: string): Convert | undefined;
}

/** Builds the lookup tables for one dataset. */
export function indexMeasures(specs: readonly MeasureSpec[]): MeasureIndex {
  const byName = new Map(specs.map((s, i) => [s.name, i] as const));
  const units = specs.map((s) => {
    const m = new Map<string, Convert>();
    for (const a of s.alternatives) m.set(a.unit, a.convert);
    return m;
  });
  const canonicalLower = specs.map((s) => s.canonicalUnit.toLowerCase());
  return {
    specs,
    byName,
    unitFor(i, unit) {
      const exact = units[i].get(unit);
      if (exact) return exact;
      return unit.toLowerCase() === canonicalLower[i] ? identity : undefined;
    },
  };
}

/** Column names required for each dataset, in the canonical order. */
export const COLUMNS: Readonly<Record<Dataset, readonly string[]>> = {
  vitals: ['hospital_id', 'measurement_date', 'patient_id', 'vital_type', 'value', 'unit'],
  labs: ['hospital_id', 'test_date', 'patient_id', 'test_type', 'result_value', 'reference_range', 'unit'],
};
