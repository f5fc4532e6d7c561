/**
 * The generator against an independent little SPEC §2 checker: every
 * unlabelled row passes, every labelled row fails with (at least) its
 * labelled codes, and the line numbers point at the records.
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataFileName, generate, labelsAsOf, labelsFileName, type GenerateOptions } from '../src/generate/index.js';
import { fixed } from '../src/generate/format.js';
import { Prng } from '../src/generate/prng.js';
import { COLUMNS, indexMeasures, MEASURES, type Dataset } from '../src/registry.js';
import { RULE_CODES } from '../src/rules/codes.js';
import { csvRecords } from './helpers.js';

/** A record with the physical line it starts on (header = 1), from the tests' own CSV reader. */
type CsvRecord = ReturnType<typeof csvRecords>[number];

// ---------------------------------------------------------------- independent checker

const HOSPITAL = /^[A-Za-z0-9_-]{1,32}$/;
const PATIENT = /^[A-Za-z0-9_-]{1,64}$/;
/** Lenient: what any reading of "finite decimal" accepts (used to prove invalid values invalid). */
const LENIENT_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;
/** Strict: how clean values are written. */
const STRICT_NUMBER = /^-?\d+(?:\.\d+)?$/;
const BOUND = String.raw`([+-]?(?:\d+(?:\.\d*)?|\.\d+))`;
const REF_RANGE = new RegExp(String.raw`^${BOUND}\s*-\s*${BOUND}$`);
const REF_BOUND = new RegExp(String.raw`^(?:<=|<|>=|>)\s*${BOUND}$`);

function isCalendarDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dt = new Date(Date.UTC(y, mo - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === mo - 1 && dt.getUTCDate() === d;
}

function refOk(s: string): boolean {
  if (s === '') return true;
  const m = REF_RANGE.exec(s);
  if (m) return Number(m[1]) <= Number(m[2]);
  return REF_BOUND.test(s);
}

interface Checked {
  codes: Set<string>;
  canonical?: number;
  measure?: string;
}

/** A fresh checker per file (duplicate detection is stateful). */
function checker(dataset: Dataset, asOf: string) {
  const index = indexMeasures(MEASURES[dataset]);
  const width = COLUMNS[dataset].length;
  const seen = new Map<string, Set<string>>();
  const typeField = dataset === 'vitals' ? 'vital_type' : 'test_type';
  return (raw: string[]): Checked => {
    const codes = new Set<string>();
    if (raw.length !== width) {
      codes.add('row.field_count');
      return { codes };
    }
    const f = raw.map((x) => x.trim());
    const [hospital, date, patient, type, value] = f;
    const unit = f[width - 1];
    if (hospital === '') codes.add('hospital_id.missing');
    else if (!HOSPITAL.test(hospital)) codes.add('hospital_id.invalid');
    if (patient === '') codes.add('patient_id.missing');
    else if (!PATIENT.test(patient)) codes.add('patient_id.invalid');
    if (date === '') codes.add('date.missing');
    else if (!isCalendarDate(date)) codes.add('date.invalid');
    else if (date > asOf) codes.add('date.in_future');
    const m = index.byName.get(type);
    if (type === '') codes.add(`${typeField}.missing`);
    else if (m === undefined) codes.add(`${typeField}.unknown`);
    if (value === '') codes.add('value.missing');
    else if (!LENIENT_NUMBER.test(value) || !Number.isFinite(Number(value))) codes.add('value.invalid');
    if (unit === '') codes.add('unit.missing');
    let canonical: number | undefined;
    if (m !== undefined && unit !== '') {
      const convert = index.unitFor(m, unit);
      if (!convert) codes.add('unit.not_allowed');
      else if (!codes.has('value.missing') && !codes.has('value.invalid')) {
        canonical = convert(Number(value));
        const [lo, hi] = index.specs[m].plausible;
        if (!(canonical >= lo && canonical <= hi)) codes.add('value.out_of_range');
      }
    }
    if (dataset === 'labs' && !refOk(f[5])) codes.add('reference_range.invalid');
    let rows = seen.get(hospital);
    if (!rows) seen.set(hospital, (rows = new Set()));
    const key = f.join('\u0000');
    if (rows.has(key)) codes.add('duplicate.exact');
    rows.add(key);
    return { codes, canonical, measure: type };
  };
}

// ---------------------------------------------------------------- fixtures

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hcp-generate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(name: string, opts: Omit<GenerateOptions, 'outDir'>) {
  const outDir = join(dir, name);
  const summary = await generate({ ...opts, outDir });
  return { outDir, summary };
}

interface Parsed {
  header: string[];
  records: CsvRecord[];
  labels: Map<number, string[]>;
  text: string;
}

async function parse(outDir: string, dataset: Dataset, year = 2024): Promise<Parsed> {
  const text = await readFile(join(outDir, dataFileName(dataset, year)), 'utf8');
  const [head, ...records] = csvRecords(text);
  const labelRecords = csvRecords(await readFile(join(outDir, labelsFileName(dataset, year)), 'utf8'));
  expect(labelRecords[0].fields).toEqual(['line_number', 'expected_codes']);
  const labels = new Map(labelRecords.slice(1).map((r) => [Number(r.fields[0]), r.fields[1].split(';')] as const));
  return { header: head.fields, records, labels, text };
}

// ---------------------------------------------------------------- tests

describe('generate', () => {
  const base = { rows: 20_000, seed: 7, defectRate: 0.05 };

  it.each<Dataset>(['vitals', 'labs'])('%s: every unlabelled row passes and every labelled row fails with its codes', async (dataset) => {
    const { outDir, summary } = await run(`check-${dataset}`, { ...base, datasets: [dataset] });
    const { header, records, labels, text } = await parse(outDir, dataset);
    expect(header).toEqual(COLUMNS[dataset]);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.includes('\r')).toBe(false);
    expect(records).toHaveLength(base.rows);
    expect(summary.files).toHaveLength(1);
    expect(summary.files[0]).toMatchObject({ dataset, rows: base.rows, defects: labels.size, bytes: Buffer.byteLength(text) });

    const check = checker(dataset, labelsAsOf(2024));
    const failures: string[] = [];
    const kinds = new Map<string, number>();
    for (const r of records) {
      const { codes } = check(r.fields);
      const expected = labels.get(r.line);
      if (expected === undefined) {
        if (codes.size > 0) failures.push(`line ${r.line} unlabelled but fails ${[...codes].join(';')}: ${r.fields.join(',')}`);
        else if (!STRICT_NUMBER.test(r.fields[4])) failures.push(`line ${r.line} clean value not a plain decimal: ${r.fields[4]}`);
      } else {
        for (const code of expected) {
          expect(RULE_CODES).toContain(code);
          kinds.set(code, (kinds.get(code) ?? 0) + 1);
          if (!codes.has(code)) failures.push(`line ${r.line} labelled ${code} but checker says ${[...codes].join(';') || 'valid'}: ${JSON.stringify(r.fields)}`);
        }
      }
    }
    expect(failures.slice(0, 10)).toEqual([]);
    // Every label points at the first line of a record.
    const starts = new Set(records.map((r) => r.line));
    for (const line of labels.keys()) expect(starts.has(line)).toBe(true);
    // Defect share close to the rate (binomial sd ≈ 31 of 1000).
    expect(labels.size / base.rows).toBeGreaterThan(0.04);
    expect(labels.size / base.rows).toBeLessThan(0.06);
    // A good spread of defect kinds.
    for (const code of ['value.out_of_range', 'value.invalid', 'date.invalid', 'unit.not_allowed', 'duplicate.exact', 'row.field_count', 'patient_id.invalid']) {
      expect(kinds.get(code) ?? 0).toBeGreaterThan(5);
    }
    if (dataset === 'labs') expect(kinds.get('reference_range.invalid') ?? 0).toBeGreaterThan(5);
  });

  it('is deterministic: the same options give byte-identical files', async () => {
    const opts = { rows: 30_000, seed: 12345, hospitals: 5, months: 3 };
    const a = await run('det-a', opts);
    const b = await run('det-b', opts);
    const c = await run('det-c', { ...opts, seed: 12346 });
    for (const name of ['vitals_2024.csv', 'lab_results_2024.csv', 'vitals_2024.labels.csv', 'lab_results_2024.labels.csv']) {
      const x = await readFile(join(a.outDir, name));
      expect(x.equals(await readFile(join(b.outDir, name)))).toBe(true);
      expect(x.equals(await readFile(join(c.outDir, name)))).toBe(false);
    }
  });

  it('gives the same labs whether or not vitals are generated too', async () => {
    const both = await run('both', { rows: 5000, seed: 3 });
    const labsOnly = await run('labs-only', { rows: 5000, seed: 3, datasets: ['labs'] });
    const x = await readFile(join(both.outDir, 'lab_results_2024.csv'));
    expect(x.equals(await readFile(join(labsOnly.outDir, 'lab_results_2024.csv')))).toBe(true);
  });

  it('respects hospitals, year and months, and keeps clean data realistic', async () => {
    const { outDir } = await run('shape', { rows: 40_000, seed: 99, hospitals: 3, year: 2023, months: 2, defectRate: 0 });
    const { records, labels } = await parse(outDir, 'vitals', 2023);
    expect(labels.size).toBe(0);
    const hospitals = new Set(records.map((r) => r.fields[0]));
    expect([...hospitals].sort()).toEqual(['H001', 'H002', 'H003']);
    const dates = records.map((r) => r.fields[1]);
    expect(dates.every((d) => d >= '2023-01-01' && d <= '2023-02-28')).toBe(true);
    expect(new Set(dates.map((d) => d.slice(0, 7)))).toEqual(new Set(['2023-01', '2023-02']));

    const check = checker('vitals', '2023-02-28');
    const byMeasure = new Map<string, number[]>();
    const bp = new Map<string, { sys?: number; dia?: number }>();
    const units = new Set<string>();
    for (const r of records) {
      const { codes, canonical, measure } = check(r.fields);
      expect([...codes]).toEqual([]);
      units.add(r.fields[5]);
      const values = byMeasure.get(measure!) ?? [];
      values.push(canonical!);
      byMeasure.set(measure!, values);
      const key = `${r.fields[0]}|${r.fields[2]}|${r.fields[1]}`;
      const pair = bp.get(key) ?? {};
      if (measure === 'blood_pressure_systolic') pair.sys = canonical;
      if (measure === 'blood_pressure_diastolic') pair.dia = canonical;
      bp.set(key, pair);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(byMeasure.get('heart_rate')!)).toBeGreaterThan(72);
    expect(mean(byMeasure.get('heart_rate')!)).toBeLessThan(84);
    expect(mean(byMeasure.get('temperature')!)).toBeGreaterThan(36.6);
    expect(mean(byMeasure.get('temperature')!)).toBeLessThan(37.2);
    expect(mean(byMeasure.get('oxygen_saturation')!)).toBeGreaterThan(95);
    for (const { sys, dia } of bp.values()) if (sys !== undefined && dia !== undefined) expect(dia).toBeLessThan(sys);
    // Alternative spellings occur (three hospitals: at least some of them).
    expect(units.has('mm[Hg]')).toBe(true);
    expect(units.has('/min')).toBe(true);
  });

  it('labs use several unit systems and reference-range forms', async () => {
    const { outDir } = await run('labs-shape', { rows: 30_000, seed: 5, defectRate: 0 });
    const { records, text } = await parse(outDir, 'labs');
    const units = new Set(records.map((r) => r.fields[6]));
    for (const u of ['mg/dL', 'mmol/L', 'g/dL', 'mEq/L', '%']) expect(units.has(u)).toBe(true);
    expect(units.has('umol/L') || units.has('µmol/L')).toBe(true);
    const refs = records.map((r) => r.fields[5]);
    expect(refs.some((r) => r === '')).toBe(true);
    expect(refs.some((r) => /^\d+(\.\d+)?-\d/.test(r))).toBe(true);
    expect(refs.some((r) => r.includes(' - '))).toBe(true);
    expect(refs.some((r) => r.startsWith('<'))).toBe(true);
    expect(refs.some((r) => r.startsWith('>'))).toBe(true);
    expect(text.includes('"')).toBe(true); // some quoting to exercise the parser
  });

  it('never repeats a clean row, even with few patients and days', async () => {
    const { outDir } = await run('crowded', { rows: 20_000, seed: 1, hospitals: 1, months: 1, patientsPerHospital: 2, defectRate: 0 });
    for (const dataset of ['vitals', 'labs'] as const) {
      const { records } = await parse(outDir, dataset);
      const check = checker(dataset, '2024-01-31');
      for (const r of records) expect([...check(r.fields).codes]).toEqual([]);
    }
  });

  it('handles zero rows and writes header-only files', async () => {
    const { outDir, summary } = await run('empty', { rows: 0, seed: 1 });
    expect(summary.files.map((f) => [f.dataset, f.rows, f.defects])).toEqual([
      ['vitals', 0, 0],
      ['labs', 0, 0],
    ]);
    expect(await readFile(join(outDir, 'vitals_2024.csv'), 'utf8')).toBe(COLUMNS.vitals.join(',') + '\n');
  });

  it('rejects bad options with the option name', async () => {
    await expect(generate({ outDir: join(dir, 'bad'), rows: -1, seed: 1 })).rejects.toThrow(/--rows/);
    await expect(generate({ outDir: join(dir, 'bad'), rows: 1, seed: 1, months: 13 })).rejects.toThrow(/--months/);
    await expect(generate({ outDir: join(dir, 'bad'), rows: 1, seed: 1, defectRate: 2 })).rejects.toThrow(/--defect-rate/);
  });

  it('runs 200k rows of each dataset (speed smoke)', async () => {
    const { summary } = await run('smoke', { rows: 200_000, seed: 2, labels: false });
    expect(summary.files.map((f) => f.rows)).toEqual([200_000, 200_000]);
    expect(summary.files.every((f) => f.labelsPath === undefined)).toBe(true);
  });
});

describe('prng and formatting', () => {
  it('is reproducible and roughly uniform / normal', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const xs = Array.from({ length: 20_000 }, () => a.float());
    expect(xs).toEqual(Array.from({ length: 20_000 }, () => b.float()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(m - 0.5)).toBeLessThan(0.01);
    const g = new Prng(1);
    const ns = Array.from({ length: 20_000 }, () => g.normal(10, 2));
    const mean = ns.reduce((s, x) => s + x, 0) / ns.length;
    const sd = Math.sqrt(ns.reduce((s, x) => s + (x - mean) ** 2, 0) / (ns.length - 1));
    expect(Math.abs(mean - 10)).toBeLessThan(0.1);
    expect(Math.abs(sd - 2)).toBeLessThan(0.1);
    expect(new Prng(1).u32()).not.toBe(new Prng(2).u32());
  });

  it.each([
    [72, 0, '72'],
    [36.55, 1, '36.6'],
    [36.04, 1, '36.0'],
    [0.951, 2, '0.95'],
    [5.1749, 2, '5.17'],
    [-1.25, 1, '-1.3'],
    [-0.01, 1, '0.0'],
    [99.96, 1, '100.0'],
  ])('fixed(%d, %d) = %s', (x, d, s) => {
    expect(fixed(x, d)).toBe(s);
  });
});
