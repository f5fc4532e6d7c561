/**
 * src/rules (and the registry it reads): every rule code has a row that
 * triggers it, rows failing several rules get every code, every unit
 * conversion gives the hand-computed canonical value, reference ranges and
 * flags, dates, numbers and identifiers — plus a test that keeps README's
 * rule catalogue and src/rules/codes.ts in step.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COLUMNS, type Dataset, MEASURES } from '../src/registry.js';
import { RULE_CODES, RULES, type RowIssue } from '../src/rules/codes.js';
import { flagFor, FLAG_H, FLAG_L, FLAG_N, FLAG_NONE, HOSPITAL_ID, monthBounds, monthOf, parseDecimal, parseIsoDate, parseRefRange, PATIENT_ID } from '../src/rules/fields.js';
import { checkRow, emptyCheckedRow, ruleContext, type CheckedRow } from '../src/rules/row.js';
import { close, curatedScan, describeRun, query, readQuarantine, removeTempDirs, ROOT, runChunks, runCli, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const AS_OF = '2024-06-30';
const day = (s: string) => parseIsoDate(s);

interface Opts {
  asOf?: string;
  period?: string;
}

/** Runs checkRow on a row given as named fields (trimmed, as the chunk passes them). */
function check(dataset: Dataset, row: Record<string, string>, opts: Opts = {}): { ok: boolean; codes: string[]; out: CheckedRow } {
  const ctx = ruleContext(dataset, day(opts.asOf ?? AS_OF), opts.period ? monthBounds(opts.period) : null);
  const f = COLUMNS[dataset].map((c) => row[c] ?? '');
  const out = emptyCheckedRow();
  const issues: RowIssue[] = [];
  const ok = checkRow(ctx, f, out, issues);
  return { ok, codes: issues.map((i) => i.code), out };
}

const VITAL = { hospital_id: 'H001', measurement_date: '2024-03-15', patient_id: 'P123', vital_type: 'heart_rate', value: '72', unit: 'bpm' };
const LAB = { hospital_id: 'H001', test_date: '2024-03-15', patient_id: 'P123', test_type: 'glucose', result_value: '90', reference_range: '70-100', unit: 'mg/dL' };
const vital = (o: Partial<typeof VITAL>) => ({ ...VITAL, ...o });
const lab = (o: Partial<typeof LAB>) => ({ ...LAB, ...o });

const sorted = (a: string[]) => [...a].sort();

// ------------------------------------------------------------------ every rule code

/** Codes checkRow can produce, one triggering row each (vitals and labs where both apply). */
const ROW_RULE_TRIGGERS: [string, Dataset, Record<string, string>, Opts][] = [
  ['hospital_id.missing', 'vitals', vital({ hospital_id: '' }), {}],
  ['hospital_id.missing', 'labs', lab({ hospital_id: '' }), {}],
  ['hospital_id.invalid', 'vitals', vital({ hospital_id: '../../etc' }), {}],
  ['hospital_id.invalid', 'labs', lab({ hospital_id: 'a/b' }), {}],
  ['patient_id.missing', 'vitals', vital({ patient_id: '' }), {}],
  ['patient_id.invalid', 'labs', lab({ patient_id: 'P 123' }), {}],
  ['date.missing', 'vitals', vital({ measurement_date: '' }), {}],
  ['date.missing', 'labs', lab({ test_date: '' }), {}],
  ['date.invalid', 'vitals', vital({ measurement_date: '2024-02-30' }), {}],
  ['date.in_future', 'labs', lab({ test_date: '2024-07-01' }), {}],
  ['date.outside_period', 'vitals', vital({ measurement_date: '2024-03-01' }), { period: '2024-02' }],
  ['vital_type.missing', 'vitals', vital({ vital_type: '' }), {}],
  ['vital_type.unknown', 'vitals', vital({ vital_type: 'pulse' }), {}],
  ['test_type.missing', 'labs', lab({ test_type: '' }), {}],
  ['test_type.unknown', 'labs', lab({ test_type: 'ldl' }), {}],
  ['value.missing', 'vitals', vital({ value: '' }), {}],
  ['value.missing', 'labs', lab({ result_value: '' }), {}],
  ['value.invalid', 'vitals', vital({ value: 'abc' }), {}],
  ['value.invalid', 'labs', lab({ result_value: '1,000' }), {}],
  ['value.out_of_range', 'vitals', vital({ value: '301' }), {}],
  ['value.out_of_range', 'labs', lab({ result_value: '2000.5' }), {}],
  ['unit.missing', 'vitals', vital({ unit: '' }), {}],
  ['unit.missing', 'labs', lab({ unit: '' }), {}],
  ['unit.not_allowed', 'vitals', vital({ unit: 'kg' }), {}],
  ['unit.not_allowed', 'labs', lab({ unit: 'g/L' }), {}],
  ['reference_range.invalid', 'labs', lab({ reference_range: 'abc' }), {}],
];

const H = COLUMNS.vitals.join(',');
const L = COLUMNS.labs.join(',');

/** Codes found at the row level (record splitting) or across rows, triggered through processChunk or the CLI. */
const CHUNK_TRIGGERS: [string, Dataset, Buffer][] = [
  ['row.invalid_utf8', 'vitals', Buffer.concat([Buffer.from('H001,2024-03-15,P'), Buffer.from([0xff]), Buffer.from('1,heart_rate,72,bpm\n')])],
  ['row.field_count', 'vitals', Buffer.from('H001,2024-03-15,P1,heart_rate,72\n')],
  ['row.field_count', 'labs', Buffer.from('H001,2024-03-15,P1,glucose,90,70-100,mg/dL,extra\n')],
  ['row.unterminated_quote', 'vitals', Buffer.from('H001,2024-03-15,"P1,heart_rate,72,bpm\n')],
  ['row.bad_quote', 'vitals', Buffer.from('H001,2024-03-15,P1,heart_rate,"72" ,bpm\n')],
];

describe('every rule code in RULES has a triggering test', () => {
  it('the tables below cover the whole catalogue', () => {
    const covered = new Set([...ROW_RULE_TRIGGERS.map((t) => t[0]), ...CHUNK_TRIGGERS.map((t) => t[0]), 'duplicate.exact']);
    expect(sorted([...covered])).toEqual(sorted(RULE_CODES));
  });

  it('every code is <field>.<problem> with a description', () => {
    for (const code of RULE_CODES) {
      expect(code).toMatch(/^[a-z_]+\.[a-z_0-9]+$/);
      expect(RULES[code].length).toBeGreaterThan(10);
    }
  });

  it.each(ROW_RULE_TRIGGERS)('%s (%s)', (code, dataset, row, opts) => {
    const r = check(dataset, row, opts);
    expect(r.ok).toBe(false);
    expect(r.codes).toEqual([code]);
  });

  it.each(CHUNK_TRIGGERS)('%s (%s, through processChunk)', (code, dataset, bytes) => {
    const r = runChunk(dataset, bytes);
    expect(r.rows).toBe(1);
    expect(r.rejects.codes).toEqual([code]);
    expect(r.accepted).toHaveLength(0);
  });

  it('the base rows pass', () => {
    expect(check('vitals', VITAL).ok).toBe(true);
    expect(check('labs', LAB).ok).toBe(true);
  });
});

/** Runs one chunk of data rows (no header) through the worker's pure core. */
function runChunk(dataset: Dataset, bytes: Buffer, asOf = AS_OF, period: string | null = null) {
  const ctx = {
    dataset,
    index: COLUMNS[dataset].map((_, i) => i),
    columnCount: COLUMNS[dataset].length,
    asOfDay: day(asOf),
    period: period ? monthBounds(period) : null,
    key: 'k',
    run: 'test',
  };
  return runChunks(ctx, [bytes])[0];
}

describe('rows failing several rules get every code', () => {
  it.each<[string, Dataset, Record<string, string>, Opts, string[]]>([
    ['vitals: five problems', 'vitals', { hospital_id: '', measurement_date: '2024-02-30', patient_id: 'bad id', vital_type: 'heart_rate', value: 'abc', unit: 'kg' }, {}, ['hospital_id.missing', 'date.invalid', 'patient_id.invalid', 'value.invalid', 'unit.not_allowed']],
    ['vitals: everything empty', 'vitals', { hospital_id: '', measurement_date: '', patient_id: '', vital_type: '', value: '', unit: '' }, {}, ['hospital_id.missing', 'date.missing', 'patient_id.missing', 'vital_type.missing', 'value.missing', 'unit.missing']],
    ['vitals: path-like hospital, future date, unknown type', 'vitals', { hospital_id: 'a/b', measurement_date: '2053-01-01', patient_id: '', vital_type: 'pulse', value: '', unit: '' }, {}, ['hospital_id.invalid', 'patient_id.missing', 'date.in_future', 'vital_type.unknown', 'value.missing', 'unit.missing']],
    ['vitals: future and outside the period', 'vitals', vital({ measurement_date: '2024-03-05' }), { asOf: '2024-02-10', period: '2024-02' }, ['date.in_future', 'date.outside_period']],
    ['vitals: out of range after conversion, bad patient', 'vitals', vital({ vital_type: 'temperature', value: '120', unit: 'F', patient_id: 'é' }), {}, ['patient_id.invalid', 'value.out_of_range']],
    ['labs: date, range and value', 'labs', lab({ test_date: '', result_value: '5000', reference_range: '100-70', unit: 'mmol/L' }), {}, ['date.missing', 'value.out_of_range', 'reference_range.invalid']],
    ['labs: unknown test and bad range', 'labs', lab({ test_type: 'ldl', reference_range: '<<5', result_value: 'NaN' }), {}, ['test_type.unknown', 'value.invalid', 'reference_range.invalid']],
  ])('%s', (_name, dataset, row, opts, codes) => {
    const r = check(dataset, row, opts);
    expect(r.ok).toBe(false);
    expect(sorted(r.codes)).toEqual(sorted(codes));
    expect(new Set(r.codes).size).toBe(r.codes.length);
  });

  it.each<[string, Buffer, string]>([
    ['a bad quote and a field too many', Buffer.from('H001,2024-01-05,P1,heart_rate,7"2,bpm,extra\n'), 'row.field_count;row.bad_quote'],
    ['a bad quote and a field too few', Buffer.from('H001,2024-01-05,P1,"heart_rate"x,72\n'), 'row.field_count;row.bad_quote'],
    ['invalid UTF-8 and a field too few', Buffer.concat([Buffer.from('H001,2024-01-05,P1,heart_rate,7'), Buffer.from([0xff]), Buffer.from('2\n')]), 'row.invalid_utf8;row.field_count'],
    ['an unterminated quote (its field count says nothing): that code only', Buffer.from('H001,2024-01-05,P1,heart_rate,"72,bpm\n'), 'row.unterminated_quote'],
    ['a bad quote, the right field count', Buffer.from('H001,2024-01-05,P1,heart_rate,7"2,bpm\n'), 'row.bad_quote;value.invalid'],
    // Invalid UTF-8 does not hide a quote problem, nor bring a meaningless field count with an unterminated quote.
    ['an unterminated quote and invalid UTF-8', Buffer.concat([Buffer.from('H001,2024-01-05,P'), Buffer.from([0xff]), Buffer.from('1,heart_rate,"72,bpm\n')]), 'row.invalid_utf8;row.unterminated_quote'],
    ['a bad quote and invalid UTF-8, the right field count', Buffer.concat([Buffer.from('H001,2024-01-05,P1,heart_rate,7"2,b'), Buffer.from([0xff]), Buffer.from('pm\n')]), 'row.invalid_utf8;row.bad_quote'],
    ['a bad quote, invalid UTF-8 and a field too many', Buffer.concat([Buffer.from('H001,2024-01-05,P1,heart_rate,7"2,b'), Buffer.from([0xff]), Buffer.from('pm,extra\n')]), 'row.invalid_utf8;row.field_count;row.bad_quote'],
    ['a bad quote, then an unterminated quote (no field count)', Buffer.from('H001,2024-01-05,P"1,heart_rate,"72,bpm\n'), 'row.unterminated_quote;row.bad_quote'],
  ])('record-level problems are all reported, in catalogue order: %s', (_, bytes, codes) => {
    const r = runChunk('vitals', bytes);
    expect(r.rejects.codes).toEqual([codes]);
  });

  it('a bad quote is reported with the row rules that also fail', () => {
    const r = runChunk('vitals', Buffer.from('H001,2024-03-15,P"1,heart_rate,"72"x,bpm\n'));
    expect(sorted(r.rejects.codes[0].split(';'))).toEqual(['patient_id.invalid', 'row.bad_quote', 'value.invalid']);
  });
});

describe('processChunk: trimming, partitions of rejects, lines', () => {
  it('trims every field before the rules (values, units, ids)', () => {
    const r = runChunk('vitals', Buffer.from(' H001 , 2024-03-15 , P1 , heart_rate , 72 , bpm \n'));
    expect(r.rejects.codes).toEqual([]);
    expect(r.accepted).toHaveLength(1);
    expect(r.accepted[0]).toMatchObject({ hospital: 'H001', month: 2024 * 12 + 2, value: 72, sourceValue: '72', sourceUnit: 'bpm' });
  });

  it('rejects carry their line, their partition (__invalid__ for bad hospital ids) and the fields as read', () => {
    const r = runChunk('vitals', Buffer.from('H001,2024-03-15,P1,heart_rate,72,bpm\n../../etc,2024-03-15,P1,heart_rate,72,bpm\n\nH002,2024-03-15,P1,heart_rate,999,bpm\n'));
    expect(r.rows).toBe(3);
    expect(r.blankLines).toBe(1);
    expect(r.rejects.line).toEqual([1, 3]);
    expect(r.rejects.hospital).toEqual(['__invalid__', 'H002']);
    expect(r.rejects.codes).toEqual(['hospital_id.invalid', 'value.out_of_range']);
    // The quarantine cells: codes, the fields as read, an empty raw_record (the record did split into its fields).
    expect(r.rejects.cells).toEqual(['hospital_id.invalid,../../etc,2024-03-15,P1,heart_rate,72,bpm,', 'value.out_of_range,H002,2024-03-15,P1,heart_rate,999,bpm,']);
  });

  it.each<[string, string]>([
    ['short, a patient ID where hospital_id is', 'MRN0012345,heart_rate,72,bpm'],
    ['short, a date where hospital_id is', '2024-01-05,MRN0099999,heart_rate,72,bpm'],
    ['short, a valid hospital ID in place', 'H001,2024-03-15,P1,heart_rate,72'],
    ['long, a valid hospital ID in place', 'H001,2024-03-15,P1,heart_rate,72,bpm,extra'],
    ['short, quoted fields', '"H001","2024-03-15","P1","heart_rate","72"'],
    ['long with a bad quote', 'H001,2024-03-15,P1,heart_rate,7"2,bpm,extra'],
  ])('a record with the wrong field count is not attributed to a hospital: __invalid__ (%s)', (_, rec) => {
    const r = runChunk('vitals', Buffer.from(`H001,2024-03-15,P1,heart_rate,72,bpm\n${rec}\n`));
    expect(r.rows).toBe(2);
    expect(r.rejects.line).toEqual([1]);
    expect(r.rejects.hospital).toEqual(['__invalid__']);
    expect(r.rejects.codes[0].split(';')).toContain('row.field_count');
  });
});

// ------------------------------------------------------------------ unit conversions

/** [dataset, type, value, unit, canonical value computed by hand]. */
const CONVERSIONS: [Dataset, string, string, string, number][] = [
  ['vitals', 'heart_rate', '72', '/min', 72],
  ['vitals', 'heart_rate', '72', 'beats/min', 72],
  ['vitals', 'blood_pressure_systolic', '120', 'mm[Hg]', 120],
  ['vitals', 'blood_pressure_diastolic', '80', 'mm[Hg]', 80],
  ['vitals', 'respiratory_rate', '16', '/min', 16],
  ['vitals', 'temperature', '36.6', 'C', 36.6],
  ['vitals', 'temperature', '36.6', '°C', 36.6],
  ['vitals', 'temperature', '36.6', 'Cel', 36.6],
  ['vitals', 'temperature', '98.6', 'fahrenheit', 37],
  ['vitals', 'temperature', '98.6', 'F', 37],
  ['vitals', 'temperature', '98.6', '°F', 37],
  ['vitals', 'temperature', '98.6', '[degF]', 37],
  ['vitals', 'temperature', '104', 'F', 40],
  ['vitals', 'weight', '150', 'lb', 68.0388555],
  ['vitals', 'weight', '150', '[lb_av]', 68.0388555],
  ['vitals', 'height', '70', 'in', 177.8],
  ['vitals', 'height', '70', '[in_i]', 177.8],
  ['vitals', 'height', '1.75', 'm', 175],
  ['labs', 'glucose', '5.5', 'mmol/L', 99.088],
  ['labs', 'cholesterol', '5', 'mmol/L', 193.35],
  ['labs', 'hba1c', '48', 'mmol/mol', 48 / 10.929 + 2.15],
  ['labs', 'creatinine', '88.4', 'umol/L', 1],
  ['labs', 'creatinine', '176.8', 'µmol/L', 2],
  ['labs', 'hemoglobin', '135', 'g/L', 13.5],
  ['labs', 'sodium', '140', 'mEq/L', 140],
  ['labs', 'potassium', '4.2', 'mEq/L', 4.2],
];

function rowFor(dataset: Dataset, type: string, value: string, unit: string, range = ''): Record<string, string> {
  return dataset === 'vitals' ? vital({ vital_type: type, value, unit }) : lab({ test_type: type, result_value: value, unit, reference_range: range });
}

describe('unit conversions', () => {
  it('the table covers every alternative unit of the registry', () => {
    const want = DATASETS_MEASURES().flatMap(([d, m]) => m.alternatives.map((a) => `${d}/${m.name}/${a.unit}`));
    const have = new Set(CONVERSIONS.map(([d, t, , u]) => `${d}/${t}/${u}`));
    expect(want.filter((w) => !have.has(w))).toEqual([]);
  });

  it.each(CONVERSIONS)('%s %s: %s %s → %d', (dataset, type, value, unit, expected) => {
    const r = check(dataset, rowFor(dataset, type, value, unit));
    expect(r.codes).toEqual([]);
    expect(Math.abs(r.out.value - expected)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(expected)));
    expect(r.out.sourceValue).toBe(value);
    expect(r.out.sourceUnit).toBe(unit);
  });

  const canonical = DATASETS_MEASURES().map(([d, m]) => [d, m.name, m.canonicalUnit] as const);
  it.each(canonical)('%s %s: the canonical unit %s is accepted in any case', (dataset, type, unit) => {
    const spec = MEASURES[dataset].find((m) => m.name === type)!;
    const v = String((spec.plausible[0] + spec.plausible[1]) / 2);
    for (const u of [unit, unit.toUpperCase(), unit.toLowerCase(), swapCase(unit)]) {
      const r = check(dataset, rowFor(dataset, type, v, u));
      expect(r.codes, `${type} ${u}`).toEqual([]);
      expect(r.out.value).toBe(Number(v));
    }
  });

  it.each<[Dataset, string, string]>([
    ['vitals', 'heart_rate', 'BEATS/MIN'],
    ['vitals', 'heart_rate', '/MIN'],
    ['vitals', 'blood_pressure_systolic', 'MM[HG]'],
    ['vitals', 'temperature', 'c'],
    ['vitals', 'temperature', 'f'],
    ['vitals', 'temperature', 'Fahrenheit'],
    ['vitals', 'temperature', 'CEL'],
    ['vitals', 'temperature', '[DEGF]'],
    ['vitals', 'weight', 'LB'],
    ['vitals', 'weight', 'Lb'],
    ['vitals', 'height', 'IN'],
    ['vitals', 'height', 'M'],
    ['vitals', 'oxygen_saturation', 'percent'],
    ['labs', 'glucose', 'MMOL/L'],
    ['labs', 'cholesterol', 'mmol/l'],
    ['labs', 'hba1c', 'MMOL/MOL'],
    ['labs', 'creatinine', 'UMOL/L'],
    ['labs', 'hemoglobin', 'G/L'],
    ['labs', 'sodium', 'meq/L'],
    ['labs', 'potassium', 'MEQ/L'],
  ])('%s %s: the alternative spelling %s is case-sensitive (unit.not_allowed)', (dataset, type, unit) => {
    const spec = MEASURES[dataset].find((m) => m.name === type)!;
    const r = check(dataset, rowFor(dataset, type, String(spec.plausible[0] + 1), unit));
    expect(r.codes).toEqual(['unit.not_allowed']);
  });

  it('a unit of another measure is not allowed', () => {
    expect(check('vitals', rowFor('vitals', 'heart_rate', '72', 'mmHg')).codes).toEqual(['unit.not_allowed']);
    expect(check('labs', rowFor('labs', 'sodium', '140', 'mg/dL')).codes).toEqual(['unit.not_allowed']);
  });

  it.each(DATASETS_MEASURES().map(([d, m]) => [d, m.name, m.plausible[0], m.plausible[1]] as const))('%s %s: plausible range [%d, %d] is inclusive', (dataset, type, lo, hi) => {
    const unit = MEASURES[dataset].find((m) => m.name === type)!.canonicalUnit;
    expect(check(dataset, rowFor(dataset, type, String(lo), unit)).codes).toEqual([]);
    expect(check(dataset, rowFor(dataset, type, String(hi), unit)).codes).toEqual([]);
    const below = lo - (lo >= 1 ? 0.5 : lo / 2);
    expect(check(dataset, rowFor(dataset, type, String(below), unit)).codes).toEqual(['value.out_of_range']);
    expect(check(dataset, rowFor(dataset, type, String(hi + 0.5), unit)).codes).toEqual(['value.out_of_range']);
  });

  it('the plausible range applies to the converted value', () => {
    // 113 °F = 45 °C (the top of the range); 114 °F is above it.
    expect(check('vitals', rowFor('vitals', 'temperature', '113', 'F')).codes).toEqual([]);
    expect(check('vitals', rowFor('vitals', 'temperature', '114', 'F')).codes).toEqual(['value.out_of_range']);
    // 45 °F would be plausible in Celsius but is 7.2 °C.
    expect(check('vitals', rowFor('vitals', 'temperature', '45', 'F')).codes).toEqual(['value.out_of_range']);
    // 3 m = 300 cm > 275.
    expect(check('vitals', rowFor('vitals', 'height', '3', 'm')).codes).toEqual(['value.out_of_range']);
  });
});

function DATASETS_MEASURES() {
  return (['vitals', 'labs'] as const).flatMap((d) => MEASURES[d].map((m) => [d, m] as const));
}

function swapCase(s: string): string {
  return [...s].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join('');
}

// ------------------------------------------------------------------ reference ranges and flags

describe('reference ranges', () => {
  it.each<[string, ReturnType<typeof parseRefRange>]>([
    ['70-100', { low: 70, high: 100, lowInclusive: true, highInclusive: true }],
    ['3.5 - 5.1', { low: 3.5, high: 5.1, lowInclusive: true, highInclusive: true }],
    ['0.6-1.2', { low: 0.6, high: 1.2, lowInclusive: true, highInclusive: true }],
    ['5-5', { low: 5, high: 5, lowInclusive: true, highInclusive: true }],
    ['<200', { low: null, high: 200, lowInclusive: true, highInclusive: false }],
    ['< 200', { low: null, high: 200, lowInclusive: true, highInclusive: false }],
    ['<=5.6', { low: null, high: 5.6, lowInclusive: true, highInclusive: true }],
    ['>60', { low: 60, high: null, lowInclusive: false, highInclusive: true }],
    ['>=3.5', { low: 3.5, high: null, lowInclusive: true, highInclusive: true }],
    ['abc', null],
    ['100-70', null],
    ['70-', null],
    ['-100', null],
    ['70–100', null],
    ['70-100-130', null],
    ['<>5', null],
    ['=<5', null],
    ['70 to 100', null],
    ['1e2-2e2', null],
    // Bounds past a double's range are not finite decimals (Number() reads them as Infinity); 1e308 in digits still is.
    [`0-1${'0'.repeat(400)}`, null],
    [`-1${'0'.repeat(400)}-0`, null],
    [`>=1${'0'.repeat(400)}`, null],
    [`<1${'0'.repeat(400)}`, null],
    [`0-1${'0'.repeat(308)}`, { low: 0, high: 1e308, lowInclusive: true, highInclusive: true }],
  ])('%j', (text, want) => {
    expect(parseRefRange(text)).toEqual(want);
  });

  it.each<[string, string, number, number, number, boolean]>([
    // [range, value, refLow, refHigh, flag, defaulted]
    ['70-100', '69.9', 70, 100, FLAG_L, false],
    ['70-100', '70', 70, 100, FLAG_N, false],
    ['70-100', '100', 70, 100, FLAG_N, false],
    ['70-100', '100.1', 70, 100, FLAG_H, false],
    ['<200', '199.9', NaN, 200, FLAG_N, false],
    ['<200', '200', NaN, 200, FLAG_H, false],
    ['<=200', '200', NaN, 200, FLAG_N, false],
    ['>60', '60', 60, NaN, FLAG_L, false],
    ['>60', '60.5', 60, NaN, FLAG_N, false],
    ['>=60', '60', 60, NaN, FLAG_N, false],
    ['>=60', '59.9', 60, NaN, FLAG_L, false],
    ['', '101', 70, 100, FLAG_H, true],
    ['', '85', 70, 100, FLAG_N, true],
  ])('glucose range %j, value %s → low %d high %d flag %d', (range, value, low, high, flag, defaulted) => {
    const r = check('labs', lab({ reference_range: range, result_value: value }));
    expect(r.codes).toEqual([]);
    expect(r.out.refLow).toEqual(low);
    expect(r.out.refHigh).toEqual(high);
    expect(r.out.flag).toBe(flag);
    expect(r.out.defaultedRange).toBe(defaulted);
  });

  it.each(DATASETS_MEASURES().filter(([d]) => d === 'labs').map(([, m]) => [m.name, m.normal![0], m.normal![1], m.canonicalUnit] as const))('%s: an empty range defaults to %d-%d', (type, lo, hi, unit) => {
    const r = check('labs', lab({ test_type: type, result_value: String(hi), reference_range: '', unit }));
    expect(r.codes).toEqual([]);
    expect([r.out.refLow, r.out.refHigh, r.out.defaultedRange]).toEqual([lo, hi, true]);
  });

  it('value and reference range are converted together', () => {
    let r = check('labs', lab({ result_value: '5.5', unit: 'mmol/L', reference_range: '3.9-5.6' }));
    expect(r.codes).toEqual([]);
    expect(close(r.out.refLow, 3.9 * 18.016, 1e-12)).toBe(true);
    expect(close(r.out.refHigh, 5.6 * 18.016, 1e-12)).toBe(true);
    expect(r.out.flag).toBe(FLAG_N);
    // A strict bound stays strict after conversion.
    r = check('labs', lab({ result_value: '5.6', unit: 'mmol/L', reference_range: '<5.6' }));
    expect(r.out.flag).toBe(FLAG_H);
    // 120 umol/L = 1.357 mg/dL, above 115 umol/L = 1.301 mg/dL.
    r = check('labs', lab({ test_type: 'creatinine', result_value: '120', unit: 'umol/L', reference_range: '62-115' }));
    expect(close(r.out.value, 120 / 88.4, 1e-12)).toBe(true);
    expect(close(r.out.refLow, 62 / 88.4, 1e-12)).toBe(true);
    expect(close(r.out.refHigh, 115 / 88.4, 1e-12)).toBe(true);
    expect(r.out.flag).toBe(FLAG_H);
    // The affine HbA1c conversion applies to the bounds too.
    r = check('labs', lab({ test_type: 'hba1c', result_value: '48', unit: 'mmol/mol', reference_range: '20-42' }));
    expect(close(r.out.refLow, 20 / 10.929 + 2.15, 1e-12)).toBe(true);
    expect(close(r.out.refHigh, 42 / 10.929 + 2.15, 1e-12)).toBe(true);
    expect(r.out.flag).toBe(FLAG_H);
    // An empty range in a non-canonical unit uses the default (canonical) range.
    r = check('labs', lab({ result_value: '5.5', unit: 'mmol/L', reference_range: '' }));
    expect([r.out.refLow, r.out.refHigh]).toEqual([70, 100]);
    expect(r.out.flag).toBe(FLAG_N);
  });

  it.each(['abc', '100-70', '70-', '≤5', `0-1${'0'.repeat(400)}`, `>=1${'0'.repeat(400)}`])('%j → reference_range.invalid', (range) => {
    expect(check('labs', lab({ reference_range: range })).codes).toEqual(['reference_range.invalid']);
  });

  it('a range bound past a double\'s range is reference_range.invalid through the worker core, never an infinite ref_low/ref_high', () => {
    const big = '1' + '0'.repeat(400);
    const r = runChunk('labs', Buffer.from(`H001,2024-03-15,P1,glucose,95,70-100,mg/dL\nH001,2024-03-15,P2,glucose,95,0-${big},mg/dL\nH001,2024-03-15,P3,glucose,95,>=${big},mg/dL\nH001,2024-03-15,P4,glucose,95,<${big},mg/dL\n`));
    expect(r.rejects.line).toEqual([1, 2, 3]);
    expect(r.rejects.codes).toEqual(['reference_range.invalid', 'reference_range.invalid', 'reference_range.invalid']);
    expect(r.accepted.map((a) => [a.refLow, a.refHigh])).toEqual([[70, 100]]);
  });

  it('a finite bound that overflows in the canonical unit is reference_range.invalid (both paths), in the unit it is read in only', () => {
    const e308 = '1' + '0'.repeat(308); // 1e308: finite; ×38.67 (cholesterol mmol/L → mg/dL) is not
    const r = runChunk('labs', Buffer.from([
      `H001,2024-03-15,P1,cholesterol,5,0-${e308},mmol/L`,
      `H001,2024-03-15,P2,cholesterol,5,-${e308}-10,mmol/L`,
      `H001,2024-03-15,P3,cholesterol,5,>=-${e308},mmol/L`,
      `H001,2024-03-15,P4,cholesterol,190,0-${e308},mg/dL`,
      `H001,2024-03-15,P5,hba1c,48,0-${e308},mmol/mol`,
    ].join('\n') + '\n'));
    expect(r.rejects.line).toEqual([0, 1, 2]);
    expect(r.rejects.codes).toEqual(['reference_range.invalid', 'reference_range.invalid', 'reference_range.invalid']);
    expect(r.accepted.map((a) => [a.refLow, a.refHigh])).toEqual([[0, 1e308], [0 / 10.929 + 2.15, 1e308 / 10.929 + 2.15]]);
    expect(r.accepted.every((a) => Number.isFinite(a.refLow) && Number.isFinite(a.refHigh))).toBe(true);
  });

  it('flagFor honours inclusive and strict bounds', () => {
    const r = { low: 1, high: 2, lowInclusive: false, highInclusive: false };
    expect([0.5, 1, 1.5, 2, 2.5].map((v) => flagFor(v, r))).toEqual([FLAG_L, FLAG_L, FLAG_N, FLAG_H, FLAG_H]);
  });
});

describe('vital flags (normal range, flag only)', () => {
  it.each<[string, string, string, number]>([
    ['heart_rate', '59', 'bpm', FLAG_L],
    ['heart_rate', '60', 'bpm', FLAG_N],
    ['heart_rate', '100', 'bpm', FLAG_N],
    ['heart_rate', '101', 'bpm', FLAG_H],
    ['blood_pressure_systolic', '121', 'mmHg', FLAG_H],
    ['blood_pressure_diastolic', '59', 'mmHg', FLAG_L],
    ['respiratory_rate', '12', 'breaths/min', FLAG_N],
    ['temperature', '98.6', 'F', FLAG_N],
    ['temperature', '36.0', 'celsius', FLAG_L],
    ['temperature', '37.9', 'C', FLAG_H],
    ['oxygen_saturation', '94', '%', FLAG_L],
    ['oxygen_saturation', '100', '%', FLAG_N],
    ['weight', '80', 'kg', FLAG_NONE],
    ['height', '180', 'cm', FLAG_NONE],
  ])('%s %s %s', (type, value, unit, flag) => {
    const r = check('vitals', vital({ vital_type: type, value, unit }));
    expect(r.codes).toEqual([]);
    expect(r.out.flag).toBe(flag);
    expect(Number.isNaN(r.out.refLow) && Number.isNaN(r.out.refHigh)).toBe(true);
  });
});

// ------------------------------------------------------------------ dates

describe('dates', () => {
  it.each<[string, string[]]>([
    ['2024-02-29', []],
    ['2000-02-29', []],
    ['2024-12-31', []],
    ['2024-01-01', []],
    ['2023-02-29', ['date.invalid']],
    ['1900-02-29', ['date.invalid']],
    ['2024-02-30', ['date.invalid']],
    ['2024-04-31', ['date.invalid']],
    ['2024-13-01', ['date.invalid']],
    ['2024-00-10', ['date.invalid']],
    ['2024-01-00', ['date.invalid']],
    ['0000-01-01', ['date.invalid']],
    ['2024-1-05', ['date.invalid']],
    ['2024-01-5', ['date.invalid']],
    ['2024/01/05', ['date.invalid']],
    ['20240105', ['date.invalid']],
    ['05-01-2024', ['date.invalid']],
    ['2024-01-05T00:00', ['date.invalid']],
    ['2024-01-05Z', ['date.invalid']],
    ['２０２４-01-05', ['date.invalid']],
    ['', ['date.missing']],
  ])('%j → %j (as of 2024-12-31)', (date, codes) => {
    expect(check('vitals', vital({ measurement_date: date }), { asOf: '2024-12-31' }).codes).toEqual(codes);
  });

  it.each<[string, string, string[]]>([
    ['2024-06-30', '2024-06-30', []],
    ['2024-06-30', '2024-07-01', ['date.in_future']],
    ['2024-02-29', '2024-03-01', ['date.in_future']],
    ['2024-12-31', '2025-01-01', ['date.in_future']],
  ])('as of %s: %s → %j', (asOf, date, codes) => {
    expect(check('labs', lab({ test_date: date }), { asOf }).codes).toEqual(codes);
  });

  it.each<[string, string, string[]]>([
    ['2024-02', '2024-02-01', []],
    ['2024-02', '2024-02-29', []],
    ['2024-02', '2024-01-31', ['date.outside_period']],
    ['2024-02', '2024-03-01', ['date.outside_period']],
    ['2023-02', '2023-02-28', []],
    ['2023-12', '2023-12-31', []],
    ['2023-12', '2024-01-01', ['date.outside_period']],
  ])('--period %s: %s → %j', (period, date, codes) => {
    expect(check('vitals', vital({ measurement_date: date }), { asOf: '2024-12-31', period }).codes).toEqual(codes);
  });

  it('monthBounds rejects malformed months', () => {
    expect(monthBounds('2024-13')).toBeNull();
    expect(monthBounds('2024-1')).toBeNull();
    expect(monthBounds('2024-02')).toEqual({ first: day('2024-02-01'), last: day('2024-02-29') });
  });

  it('day numbers are days since 1970-01-01 and the month is YYYY-MM', () => {
    expect(day('1970-01-01')).toBe(0);
    expect(day('2024-03-01') - day('2024-02-28')).toBe(2);
    expect(day('2024-01-01')).toBe(Date.UTC(2024, 0, 1) / 86_400_000);
    const r = check('vitals', vital({ measurement_date: '2024-02-29' }));
    expect(monthOf(r.out.monthIndex)).toBe('2024-02');
    expect(r.out.day).toBe(Date.UTC(2024, 1, 29) / 86_400_000);
  });
});

// ------------------------------------------------------------------ numbers

describe('numbers', () => {
  it.each<[string, number]>([
    ['72', 72],
    ['36.6', 36.6],
    ['-1.5', -1.5],
    ['.5', 0.5],
    ['0', 0],
    ['007', 7],
    ['1e3', NaN],
    ['1E3', NaN],
    ['NaN', NaN],
    ['Infinity', NaN],
    ['-Infinity', NaN],
    ['0x1A', NaN],
    ['1,000', NaN],
    ['1 000', NaN],
    ['1.2.3', NaN],
    ['--5', NaN],
    ['', NaN],
    ['.', NaN],
    ['-', NaN],
    ['７２', NaN],
    ['٧٢', NaN],
    ['72 bpm', NaN],
    // Past a double's range: Number() gives ±Infinity, which is not a finite decimal.
    ['1' + '0'.repeat(400), NaN],
    ['-1' + '0'.repeat(400), NaN],
    ['1' + '0'.repeat(308), 1e308],
    ['0.' + '0'.repeat(400) + '1', 0],
  ])('parseDecimal(%j) → %d', (text, want) => {
    expect(parseDecimal(text)).toEqual(want);
  });

  it.each<[string, string[]]>([
    ['72', []],
    ['36.6', []],
    ['.5', ['value.out_of_range']],
    ['-1.5', ['value.out_of_range']],
    ['1e3', ['value.invalid']],
    ['NaN', ['value.invalid']],
    ['Infinity', ['value.invalid']],
    ['1' + '0'.repeat(400), ['value.invalid']],
    ['1' + '0'.repeat(308), ['value.out_of_range']],
    ['0x1A', ['value.invalid']],
    ['1,000', ['value.invalid']],
    ['', ['value.missing']],
  ])('heart rate value %j → %j', (value, codes) => {
    expect(check('vitals', vital({ value })).codes).toEqual(codes);
  });

  it('a value with spaces around it is trimmed, and the trimmed text is the source value', () => {
    const r = runChunk('labs', Buffer.from('H001,2024-03-15,P1,glucose,  90  , 70-100 ,mg/dL\n'));
    expect(r.rejects.codes).toEqual([]);
    expect(r.accepted.map((a) => [a.value, a.sourceValue, a.refLow, a.refHigh])).toEqual([[90, '90', 70, 100]]);
  });
});

// ------------------------------------------------------------------ identifiers

describe('identifiers', () => {
  it.each<[string, boolean]>([
    ['H001', true],
    ['a-b_C9', true],
    ['A'.repeat(32), true],
    ['A'.repeat(33), false],
    ['', false],
    ['H 001', false],
    ['H.001', false],
    ['..', false],
    ['../../etc', false],
    ['a/b', false],
    ['a\\b', false],
    ['Hé', false],
    ['H001\n', false],
  ])('hospital_id %j valid: %s', (id, ok) => {
    expect(HOSPITAL_ID.test(id)).toBe(ok);
    const codes = check('vitals', vital({ hospital_id: id })).codes;
    expect(codes).toEqual(ok ? [] : [id === '' ? 'hospital_id.missing' : 'hospital_id.invalid']);
  });

  it.each<[string, boolean]>([
    ['P467220', true],
    ['MRN-04_715064', true],
    ['5980417', true],
    ['p'.repeat(64), true],
    ['p'.repeat(65), false],
    ['', false],
    ["O'MRN", false],
    ['67900,21', false],
    ['épat_1', false],
    ['P 1', false],
  ])('patient_id %j valid: %s', (id, ok) => {
    expect(PATIENT_ID.test(id)).toBe(ok);
    const codes = check('vitals', vital({ patient_id: id })).codes;
    expect(codes).toEqual(ok ? [] : [id === '' ? 'patient_id.missing' : 'patient_id.invalid']);
  });
});

// ------------------------------------------------------------------ duplicate.exact (coordinator)

describe('duplicate.exact through the CLI', () => {
  it('keeps the first of identical rows (after trimming and unquoting), rejects later copies, across chunks', async () => {
    const dir = tempDir();
    const input = join(dir, 'vitals.csv');
    const lines = [H];
    lines.push('H001,2024-01-05,P1,temperature,36.6,°C'); // line 2: multibyte unit
    lines.push('H001,2024-01-05,P2,heart_rate,72,bpm'); // line 3
    lines.push(' H001 ,"2024-01-05",P2, heart_rate ,72,bpm'); // line 4: same after trimming/unquoting
    lines.push('H002,2024-01-05,P2,heart_rate,72,bpm'); // line 5: other hospital, not a duplicate
    lines.push('H001,2024-01-05,P2,heart_rate,73,bpm'); // line 6: differs
    // Filler so the copies below land in later 1 KiB chunks.
    for (let i = 0; i < 120; i++) lines.push(`H003,2024-02-${String(1 + (i % 28)).padStart(2, '0')},Q${i},heart_rate,${60 + (i % 30)},bpm`);
    const copyLine = lines.length + 1;
    lines.push('H001,2024-01-05,P1,temperature,36.6,°C'); // copy of line 2
    lines.push('H001,2024-01-05,P2,heart_rate,72,bpm'); // copy of line 3
    lines.push('H001,2024-01-05,P9,heart_rate,abc,bpm'); // rejected row...
    lines.push('H001,2024-01-05,P9,heart_rate,abc,bpm'); // ...and its copy: rejected by its own rule, not as a duplicate
    writeFileSync(input, lines.join('\n') + '\n');
    const out = join(dir, 'out');
    const r = await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', out, '--workers', '2', '--chunk-size', '1024', '--as-of', '2024-12-31']);
    expect(r.code, describeRun(r)).toBe(0);
    const q = (await readQuarantine(out, 'vitals')).sort((a, b) => Number(a.line_number) - Number(b.line_number));
    expect(q.map((x) => [Number(x.line_number), x.reason_codes])).toEqual([
      [4, 'duplicate.exact'],
      [copyLine, 'duplicate.exact'],
      [copyLine + 1, 'duplicate.exact'],
      [copyLine + 2, 'value.invalid'],
      [copyLine + 3, 'value.invalid'],
    ]);
    // The quarantined copy holds the fields as read.
    expect(q[0]).toMatchObject({ hospital_id: ' H001 ', measurement_date: '2024-01-05', patient_id: 'P2', vital_type: ' heart_rate ', value: '72', unit: 'bpm' });
    expect(q[1]).toMatchObject({ hospital_id: 'H001', patient_id: 'P1', vital_type: 'temperature', value: '36.6', unit: '°C' });
    expect(q[2]).toMatchObject({ hospital_id: 'H001', patient_id: 'P2', value: '72', unit: 'bpm' });
    const n = await query(`SELECT count(*) AS n FROM ${curatedScan(out, 'vitals')}`);
    expect(n[0].n).toBe(lines.length - 1 - q.length);
    expect(r.json?.rows).toEqual({ read: lines.length - 1, accepted: lines.length - 1 - q.length, rejected: q.length });
  });
});

// ------------------------------------------------------------------ docs: the rule catalogue

const README = join(ROOT, 'README.md');

describe.skipIf(!existsSync(README))('README rule catalogue', () => {
  it('lists exactly the codes of RULES (section "Rule catalogue", a table whose first column is the `code`)', () => {
    const text = readFileSync(README, 'utf8');
    const heading = /^(#{2,3}) Rule catalogue\s*$/m.exec(text);
    expect(heading, 'README.md has no "## Rule catalogue" section').not.toBeNull();
    const rest = text.slice(heading!.index).split('\n').slice(1);
    // The section ends at the next heading of the same or a higher level.
    const end = rest.findIndex((l) => new RegExp(`^#{1,${heading![1].length}} `).test(l));
    const section = end === -1 ? rest : rest.slice(0, end);
    const codes = section
      .filter((l) => l.trim().startsWith('|'))
      .map((l) => l.trim().split('|')[1]?.trim() ?? '')
      .map((cell) => /^`([^`]+)`$/.exec(cell)?.[1])
      .filter((c): c is string => c !== undefined);
    expect(new Set(codes).size, 'a code is listed twice').toBe(codes.length);
    expect(sorted(codes)).toEqual(sorted(RULE_CODES));
  });
});
