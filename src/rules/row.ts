/**
 * The row rules (SPEC §2) for both datasets, as one pure function: a row's
 * trimmed fields in, either the curated values or *every* failed rule out.
 * The zod schema in ./schema.ts states the same contract declaratively; a
 * property test checks the two agree.
 */
import { COLUMNS, type Dataset, indexMeasures, MEASURES, type MeasureIndex } from '../registry.js';
import type { RowIssue, RuleCode } from './codes.js';
import { flagFor, FLAG_NONE, isValidHospitalId, parseDecimal, parseIsoDate, parseRefRange, PATIENT_ID, type RefRange } from './fields.js';

export interface RuleContext {
  readonly dataset: Dataset;
  readonly measures: MeasureIndex;
  /** Last acceptable day (the --as-of date). */
  readonly asOfDay: number;
  /** Inclusive --period bounds, or null for no period filter. */
  readonly period: { first: number; last: number } | null;
}

export function ruleContext(dataset: Dataset, asOfDay: number, period: RuleContext['period']): RuleContext {
  return { dataset, measures: indexMeasures(MEASURES[dataset]), asOfDay, period };
}

/** Curated values of an accepted row; reused between rows (copy what you keep). */
export interface CheckedRow {
  hospitalId: string;
  patientId: string;
  day: number;
  /** year × 12 + month − 1 of the date: an integer key, so no string is made per row. */
  monthIndex: number;
  measure: number;
  value: number;
  flag: number;
  sourceValue: string;
  sourceUnit: string;
  refLow: number;
  refHigh: number;
  /** Labs: the reference range was empty and the default was used. */
  defaultedRange: boolean;
}

export function emptyCheckedRow(): CheckedRow {
  return { hospitalId: '', patientId: '', day: 0, monthIndex: 0, measure: 0, value: 0, flag: 0, sourceValue: '', sourceUnit: '', refLow: NaN, refHigh: NaN, defaultedRange: false };
}

/** Field names of the dataset's columns in COLUMNS order (labs call the value `result_value`). */
const FIELD = {
  vitals: { date: 'measurement_date', type: 'vital_type', value: 'value' },
  labs: { date: 'test_date', type: 'test_type', value: 'result_value' },
} as const;

/**
 * Checks one row. `f` holds the trimmed required fields in COLUMNS[dataset]
 * order. Pushes every failed rule onto `issues` and returns true when there
 * is none (then `out` holds the curated values).
 */
/** Records a failed rule (a plain function, not a closure per row). */
function add(issues: RowIssue[], code: RuleCode, field: string): void {
  issues.push({ code, field });
}

export function checkRow(ctx: RuleContext, f: readonly string[], out: CheckedRow, issues: RowIssue[]): boolean {
  const before = issues.length;
  const names = FIELD[ctx.dataset];
  const hospitalId = f[0];
  const dateText = f[1];
  const patientId = f[2];
  const typeText = f[3];
  const valueText = f[4];
  const unitText = ctx.dataset === 'vitals' ? f[5] : f[6];

  if (hospitalId === '') add(issues, 'hospital_id.missing', 'hospital_id');
  else if (!isValidHospitalId(hospitalId)) add(issues, 'hospital_id.invalid', 'hospital_id');

  if (patientId === '') add(issues, 'patient_id.missing', 'patient_id');
  else if (!PATIENT_ID.test(patientId)) add(issues, 'patient_id.invalid', 'patient_id');

  const day = dateText === '' ? NaN : parseIsoDate(dateText);
  if (dateText === '') add(issues, 'date.missing', names.date);
  else if (Number.isNaN(day)) add(issues, 'date.invalid', names.date);
  else {
    if (day > ctx.asOfDay) add(issues, 'date.in_future', names.date);
    if (ctx.period && (day < ctx.period.first || day > ctx.period.last)) add(issues, 'date.outside_period', names.date);
  }

  const typeCode = ctx.dataset === 'vitals' ? 'vital_type' : 'test_type';
  const measure = ctx.measures.byName.get(typeText);
  if (typeText === '') add(issues, `${typeCode}.missing`, names.type);
  else if (measure === undefined) add(issues, `${typeCode}.unknown`, names.type);

  const raw = valueText === '' ? NaN : parseDecimal(valueText);
  if (valueText === '') add(issues, 'value.missing', names.value);
  else if (Number.isNaN(raw)) add(issues, 'value.invalid', names.value);

  let convert: ((x: number) => number) | undefined;
  if (unitText === '') add(issues, 'unit.missing', 'unit');
  else if (measure !== undefined) {
    convert = ctx.measures.unitFor(measure, unitText);
    if (!convert) add(issues, 'unit.not_allowed', 'unit');
  }

  let value = NaN;
  if (convert && !Number.isNaN(raw) && measure !== undefined) {
    value = convert(raw);
    const [lo, hi] = ctx.measures.specs[measure].plausible;
    if (!(value >= lo && value <= hi)) add(issues, 'value.out_of_range', names.value);
  }

  let range: RefRange | null = null;
  let defaulted = false;
  if (ctx.dataset === 'labs') {
    const text = f[5];
    if (text === '') defaulted = true;
    else {
      range = parseRefRange(text);
      // A finite bound may still overflow in the canonical unit (1e308 mmol/L of glucose): not a usable range.
      if (range && convert && !(finiteBound(range.low, convert) && finiteBound(range.high, convert))) range = null;
      if (!range) add(issues, 'reference_range.invalid', 'reference_range');
    }
  }

  if (issues.length !== before) return false;

  const spec = ctx.measures.specs[measure!];
  out.hospitalId = hospitalId;
  out.patientId = patientId;
  out.day = day;
  // The date is valid ISO here, so its digits are at fixed places.
  const d = (i: number) => dateText.charCodeAt(i) - 48;
  out.monthIndex = (d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3)) * 12 + d(5) * 10 + d(6) - 1;
  out.measure = measure!;
  out.value = value;
  out.sourceValue = valueText;
  out.sourceUnit = unitText;
  out.defaultedRange = defaulted;
  if (ctx.dataset === 'labs') {
    // Value and reference range are converted together (SPEC §2).
    if (range) {
      range = {
        ...range,
        low: range.low === null ? null : convert!(range.low),
        high: range.high === null ? null : convert!(range.high),
      };
    } else {
      const [lo, hi] = spec.normal!;
      range = { low: lo, high: hi, lowInclusive: true, highInclusive: true };
    }
    out.refLow = range.low ?? NaN;
    out.refHigh = range.high ?? NaN;
    out.flag = flagFor(value, range);
  } else {
    out.refLow = NaN;
    out.refHigh = NaN;
    out.flag = spec.normal ? flagFor(value, { low: spec.normal[0], high: spec.normal[1], lowInclusive: true, highInclusive: true }) : FLAG_NONE;
  }
  return true;
}

/** An open bound, or one that stays finite in the canonical unit. */
const finiteBound = (b: number | null, convert: (x: number) => number) => b === null || Number.isFinite(convert(b));

/** The required columns for a dataset, for messages and the quarantine header. */
export const requiredColumns = (d: Dataset) => COLUMNS[d];
