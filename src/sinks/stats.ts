/**
 * Monthly statistics (SPEC §4): one row per (dataset, hospital, month,
 * measure) from the per-hospital sketch files, plus `ALL` rollups made by
 * merging those sketches (no rescan of rows), written as Parquet, CSV and a
 * small-cell-suppressed public CSV.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { PipelineError } from '../errors.js';
import { type Dataset, DATASETS, MEASURES } from '../registry.js';
import { MeasureSketch } from '../sketch/measure.js';
import { stddev } from '../sketch/moments.js';
import { QUANTILES } from '../sketch/quantiles.js';
import { csvField } from '../parse/csv.js';
import { ALL_HOSPITALS } from '../rules/fields.js';
import { SKETCH_VERSION, type SketchFile } from './commit.js';
import { readJsonFiles, writeFileAtomic } from './fsutil.js';

export const STAT_COLUMNS = [
  'dataset', 'hospital_id', 'month', 'measure', 'unit', 'n', 'n_patients', 'mean', 'stddev', 'min', 'max',
  'p05', 'p25', 'p50', 'p75', 'p95', 'p99', 'n_low', 'n_high',
] as const;
const NUMERIC = STAT_COLUMNS.slice(5);
const QCOLS = ['p05', 'p25', 'p50', 'p75', 'p95', 'p99'] as const;

export interface StatRow {
  dataset: string; hospital_id: string; month: string; measure: string; unit: string;
  n: number; n_patients: number; mean: number | null; stddev: number | null; min: number | null; max: number | null;
  p05: number | null; p25: number | null; p50: number | null; p75: number | null; p95: number | null; p99: number | null;
  n_low: number | null; n_high: number | null;
}

/** Reads every hospital's sketch file of a dataset, sorted by hospital. */
export function readSketches(out: string, dataset: Dataset): SketchFile[] {
  const dir = join(out, 'sketches', dataset);
  return readJsonFiles<SketchFile>(dir, (f) => /^hospital_id=.+\.json$/.test(f)).map(({ name, value }) => {
    if (value.version !== SKETCH_VERSION) throw new PipelineError('HCP_ERR_INTERNAL', `Unsupported sketch version ${value.version} in ${name}`, { file: join(dir, name) });
    return value;
  });
}

function statRow(dataset: Dataset, hospital: string, month: string, measure: string, s: MeasureSketch): StatRow {
  const spec = MEASURES[dataset].find((m) => m.name === measure);
  const hasRange = !!spec?.normal;
  const row: StatRow = {
    dataset, hospital_id: hospital, month, measure, unit: spec?.canonicalUnit ?? '',
    n: s.moments.n, n_patients: s.nPatients, mean: s.moments.n ? s.moments.mean : null, stddev: stddev(s.moments),
    min: s.moments.n ? s.min : null, max: s.moments.n ? s.max : null,
    p05: null, p25: null, p50: null, p75: null, p95: null, p99: null,
    n_low: hasRange ? s.nLow : null, n_high: hasRange ? s.nHigh : null,
  };
  QUANTILES.forEach((p, i) => (row[QCOLS[i]] = s.quantiles.quantile(p)));
  return row;
}

/** Per-hospital rows plus ALL rollups, sorted by month, measure, hospital (ALL last). */
export function computeStats(dataset: Dataset, files: SketchFile[]): StatRow[] {
  const rows: StatRow[] = [];
  const rollup = new Map<string, MeasureSketch>();
  for (const f of files) {
    for (const month of Object.keys(f.months).sort()) {
      for (const measure of Object.keys(f.months[month]).sort()) {
        const s = MeasureSketch.fromJSON(f.months[month][measure]);
        rows.push(statRow(dataset, f.hospital_id, month, measure, s));
        const k = `${month}\u0000${measure}`;
        const all = rollup.get(k);
        if (all) all.merge(MeasureSketch.fromJSON(f.months[month][measure]));
        else rollup.set(k, MeasureSketch.fromJSON(f.months[month][measure]));
      }
    }
  }
  for (const [k, s] of rollup) {
    const [month, measure] = k.split('\u0000');
    rows.push(statRow(dataset, ALL_HOSPITALS, month, measure, s));
  }
  const hkey = (h: string) => (h === ALL_HOSPITALS ? '\uffff' : h);
  rows.sort((a, b) => cmp(a.month, b.month) || cmp(a.measure, b.measure) || cmp(hkey(a.hospital_id), hkey(b.hospital_id)));
  return rows;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const fmt = (v: string | number | null) => (v === null ? '' : typeof v === 'number' ? String(v) : csvField(v));

export function statsCsv(rows: StatRow[], minCell: number | null): string {
  const lines = [STAT_COLUMNS.join(',')];
  for (const r of rows) {
    const suppress = minCell !== null && (r.n_patients ?? 0) < minCell;
    lines.push(STAT_COLUMNS.map((c) => (suppress && (NUMERIC as readonly string[]).includes(c) && c !== 'n_patients' ? '' : fmt(r[c]))).join(','));
  }
  return lines.join('\n') + '\n';
}

function statsParquet(rows: StatRow[]): ArrayBuffer {
  const col = (name: (typeof STAT_COLUMNS)[number]) => rows.map((r) => r[name] as unknown);
  const ints = new Set(['n', 'n_patients', 'n_low', 'n_high']);
  return parquetWriteBuffer({
    columnData: STAT_COLUMNS.map((name, i) =>
      i < 5
        ? { name, data: col(name) as string[], type: 'STRING' as const, nullable: false }
        : ints.has(name)
          ? { name, data: col(name).map((v) => (v === null ? null : BigInt(v as number))) as never, type: 'INT64' as const, nullable: name === 'n_low' || name === 'n_high' }
          : { name, data: col(name) as (number | null)[], type: 'DOUBLE' as const, nullable: true },
    ),
    createdBy: 'healthcare-pipeline',
  });
}

export interface StatsSummary {
  dataset: Dataset;
  rows: number;
  hospitals: number;
  files: string[];
}

/**
 * Whether `process` committed anything for the dataset under `out`: a hospital manifest, or an input manifest
 * (a file without rows has no hospital). A dataset processed without a single accepted row has no sketches.
 */
function processed(out: string, dataset: Dataset): boolean {
  const dir = join(out, '_manifests', dataset);
  const json = (d: string) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json'));
  return json(dir) || json(join(dir, 'inputs'));
}

/**
 * Merges the sketches of every dataset processed under `out` and writes the statistics files: a dataset
 * processed without accepted rows gets them with the header only, so none from an earlier run is left behind.
 */
export function writeStats(out: string, minCell: number): StatsSummary[] {
  const summaries: StatsSummary[] = [];
  for (const dataset of DATASETS) {
    const files = readSketches(out, dataset);
    if (files.length === 0 && !processed(out, dataset)) continue;
    const rows = computeStats(dataset, files);
    const dir = join(out, 'stats');
    const paths = [`monthly_${dataset}.parquet`, `monthly_${dataset}.csv`, `monthly_${dataset}_public.csv`].map((f) => join(dir, f));
    writeFileAtomic(paths[0], new Uint8Array(statsParquet(rows)));
    writeFileAtomic(paths[1], statsCsv(rows, null));
    writeFileAtomic(paths[2], statsCsv(rows, minCell));
    summaries.push({ dataset, rows: rows.length, hospitals: files.length, files: paths });
  }
  if (summaries.length === 0) throw new PipelineError('HCP_ERR_NO_SKETCHES', `Nothing processed under ${out} (no manifests): run process first`, { file: out });
  return summaries;
}
