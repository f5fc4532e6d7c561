/**
 * The synthetic data generator: deterministic vitals and lab CSVs (SPEC §1)
 * with a known share of labelled defects, for tests, benchmarks and demos.
 *
 *   options ─► Population (hospitals, patients) ─┬─► VitalsSource ─┐
 *                                                └─► LabsSource  ──┤ clean Row
 *        per row: chance(defectRate) ? DefectInjector ─► line + label
 *                                    : cleanLine ─► line (remembered for duplicates)
 *        lines ─► ~1 MiB string ─► ChunkWriter (tmp file, backpressure, rename)
 *
 * Same options, same bytes: every random draw comes from seeded PRNG streams
 * (one per dataset and purpose), nothing depends on time or the platform.
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import { committed, willCommit } from '../lifecycle.js';
import { COLUMNS, indexMeasures, MEASURES, type Dataset } from '../registry.js';
import { DefectInjector } from './defects.js';
import { calendar } from './format.js';
import { LabsSource } from './labs.js';
import { Population } from './population.js';
import { Prng } from './prng.js';
import { cleanLine, emptyRow } from './row.js';
import type { VisitSource } from './source.js';
import { VitalsSource } from './vitals.js';
import { ChunkWriter } from './writer.js';

export interface GenerateOptions {
  outDir: string;
  /** Data rows per dataset. */
  rows: number;
  seed: number;
  /** Number of hospitals, ids `H001`…; default 8. */
  hospitals?: number;
  /** Default 2024. */
  year?: number;
  /** Dates spread over the first `months` months of `year`; default 12. */
  months?: number;
  /** Share of rows given exactly one labelled defect; default 0.03. */
  defectRate?: number;
  /** Default clamp(rows / (hospitals * 20), 20, 50000); enlarged if needed so no patient is measured twice a day. */
  patientsPerHospital?: number;
  /** Default both. */
  datasets?: Dataset[];
  /** Also write `<file>.labels.csv` listing the defective rows; default true. */
  labels?: boolean;
}

export interface GeneratedFile {
  dataset: Dataset;
  path: string;
  rows: number;
  bytes: number;
  defects: number;
  labelsPath?: string;
}

export interface GenerateSummary {
  files: GeneratedFile[];
}

/** Options with every default filled in, validated and frozen. */
export type FilledGenerateOptions = Readonly<Required<GenerateOptions>>;

/** File name stems per dataset (SPEC §1: `vitals_2024.csv`, `lab_results_2024.csv`). */
const STEMS: Readonly<Record<Dataset, string>> = { vitals: 'vitals', labs: 'lab_results' };

/** Rows are concatenated into strings of about this many characters, then copied into the writer's buffer. */
const TEXT_CHARS = 16 << 10;

/** The data file name of a dataset for a year. */
export function dataFileName(dataset: Dataset, year: number): string {
  return `${STEMS[dataset]}_${year}.csv`;
}

/** The labels file name of a dataset for a year. */
export function labelsFileName(dataset: Dataset, year: number): string {
  return `${STEMS[dataset]}_${year}.labels.csv`;
}

/**
 * The `--as-of` date the labels assume: the last day of the generated year.
 * Clean rows are valid for any as-of from the last generated date onwards;
 * `date.in_future` rows are dated 7 to 30 years after `year`.
 */
export function labelsAsOf(year: number): string {
  return `${year}-12-31`;
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);

/** Fills defaults and validates; errors name the option (SPEC §6: bad usage is exit 2). */
export function resolveGenerateOptions(opts: GenerateOptions): FilledGenerateOptions {
  const hospitals = opts.hospitals ?? 8;
  const rows = opts.rows;
  if (typeof opts.outDir !== 'string' || opts.outDir === '') throw usageError('--out must be a directory path', 'out');
  if (!isInt(rows) || rows < 0) throw usageError('--rows must be a non-negative integer', 'rows');
  if (!isInt(opts.seed)) throw usageError('--seed must be an integer', 'seed');
  if (!isInt(hospitals) || hospitals < 1 || hospitals > 99_999) throw usageError('--hospitals must be an integer from 1 to 99999', 'hospitals');
  const year = opts.year ?? 2024;
  if (!isInt(year) || year < 1000 || year > 9000) throw usageError('--year must be an integer from 1000 to 9000', 'year');
  const months = opts.months ?? 12;
  if (!isInt(months) || months < 1 || months > 12) throw usageError('--months must be an integer from 1 to 12', 'months');
  const defectRate = opts.defectRate ?? 0.03;
  if (typeof defectRate !== 'number' || !(defectRate >= 0 && defectRate <= 1)) throw usageError('--defect-rate must be a number from 0 to 1', 'defect-rate');
  const patientsPerHospital = opts.patientsPerHospital ?? Math.min(50_000, Math.max(20, Math.round(rows / (hospitals * 20))));
  if (!isInt(patientsPerHospital) || patientsPerHospital < 1) throw usageError('patientsPerHospital must be a positive integer', 'patients-per-hospital');
  const datasets = [...new Set(opts.datasets ?? (['vitals', 'labs'] as Dataset[]))];
  for (const d of datasets) if (d !== 'vitals' && d !== 'labs') throw usageError(`unknown dataset "${String(d)}" (vitals or labs)`, 'datasets');
  return Object.freeze({ outDir: opts.outDir, rows, seed: opts.seed, hospitals, year, months, defectRate, patientsPerHospital, datasets, labels: opts.labels ?? true });
}

/**
 * Writes `<outDir>/vitals_<year>.csv` and/or `<outDir>/lab_results_<year>.csv`
 * with `rows` data rows each, and (unless `labels: false`) a
 * `<name>.labels.csv` per file with `line_number,expected_codes` for every
 * defective row: the physical line where the record starts (header = 1) and
 * the `;`-separated rule codes it must be rejected with. Unlabelled rows are
 * valid under SPEC §2 for any `--as-of` on or after the last generated date
 * and no `--period`; labels assume `--as-of` = {@link labelsAsOf}.
 */
export async function generate(opts: GenerateOptions): Promise<GenerateSummary> {
  const o = resolveGenerateOptions(opts);
  await mkdir(o.outDir, { recursive: true });
  const dates = calendar(o.year, o.months);
  const pop = new Population({
    seed: o.seed,
    hospitals: o.hospitals,
    patientsPerHospital: o.patientsPerHospital,
    days: dates.length,
    maxVisitsPerHospital: o.rows,
  });
  const files: GeneratedFile[] = [];
  // An interrupt after the first dataset's files are in place says which are new and which not (src/lifecycle.ts).
  willCommit(...o.datasets);
  for (const dataset of o.datasets) files.push(await writeDataset(dataset, o, pop, dates));
  return { files };
}

async function writeDataset(dataset: Dataset, o: FilledGenerateOptions, pop: Population, dates: readonly string[]): Promise<GeneratedFile> {
  const source: VisitSource = dataset === 'vitals' ? new VitalsSource(pop, dates, o.seed) : new LabsSource(pop, dates, o.seed);
  const defects = new DefectInjector({ dataset, index: indexMeasures(MEASURES[dataset]), year: o.year, seed: o.seed });
  const decide = new Prng(o.seed, dataset === 'vitals' ? 0xd1ce1 : 0xd1ce2);
  const path = join(o.outDir, dataFileName(dataset, o.year));
  const labelsPath = o.labels ? join(o.outDir, labelsFileName(dataset, o.year)) : undefined;
  const out = await ChunkWriter.open(path);
  let labels: ChunkWriter | undefined;
  const rate = o.defectRate;
  const row = emptyRow();
  let text = COLUMNS[dataset].join(',') + '\n';
  let labelText = 'line_number,expected_codes\n';
  let line = 2; // physical line of the next record: the header is line 1
  let defective = 0;
  try {
    // Inside the try: a labels file that cannot be opened takes the data file's temporary file with it.
    if (labelsPath) labels = await ChunkWriter.open(labelsPath);
    for (let i = 0; i < o.rows; i++) {
      source.next(row);
      if (rate > 0 && decide.float() < rate) {
        text += defects.inject(row);
        labelText += line + ',' + defects.codes + '\n';
        line += 1 + defects.extraLines;
        defective++;
        if (labelText.length >= TEXT_CHARS) {
          if (labels) await labels.write(labelText);
          labelText = '';
        }
      } else {
        const clean = cleanLine(dataset, row);
        defects.remember(clean);
        text += clean;
        line++;
      }
      if (text.length >= TEXT_CHARS) {
        await out.write(text);
        text = '';
      }
    }
    await out.write(text);
    await out.finish();
    if (labels) {
      await labels.write(labelText);
      await labels.finish();
    }
    // Both renames in one tick: an interrupt never finds a data file with the previous run's labels.
    out.commit();
    labels?.commit();
    committed(dataset);
  } catch (e) {
    await out.abort().catch(() => undefined);
    await labels?.abort().catch(() => undefined);
    throw e;
  }
  return { dataset, path, rows: o.rows, bytes: out.bytes, defects: defective, ...(labelsPath ? { labelsPath } : {}) };
}
