/**
 * Monthly statistics (SPEC §4): one row per (dataset, hospital, month,
 * measure) from the per-hospital sketch files, plus `ALL` rollups made by
 * merging those sketches (no rescan of rows), written as Parquet, CSV and a
 * public CSV with small cells suppressed (`suppress.ts`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { PipelineError } from '../errors.js';
import { type Dataset, DATASETS, MEASURES } from '../registry.js';
import { MeasureSketch } from '../sketch/measure.js';
import { stddev } from '../sketch/moments.js';
import { QUANTILES } from '../sketch/quantiles.js';
import { csvField } from '../parse/csv.js';
import { ALL_HOSPITALS } from '../rules/fields.js';
import { readManifests, SKETCH_VERSION, type SketchFile } from './commit.js';
import { readJsonFiles, writeFileAtomic, writeJsonAtomic } from './fsutil.js';
import { type PublicStatRow, suppressSmallCells } from './suppress.js';
import { checkShape, SketchFileShape, StatsSourcesShape } from './schemas.js';

export const STAT_COLUMNS = [
  'dataset', 'hospital_id', 'month', 'measure', 'unit', 'n', 'n_patients', 'mean', 'stddev', 'min', 'max',
  'p05', 'p25', 'p50', 'p75', 'p95', 'p99', 'n_low', 'n_high',
] as const;
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
  return readJsonFiles<unknown>(dir, (f) => /^hospital_id=.+\.json$/.test(f)).map(({ name, value }) => {
    const file = join(dir, name);
    const version = typeof value === 'object' && value !== null ? (value as { version?: unknown }).version : undefined;
    if (typeof version === 'number' && version !== SKETCH_VERSION) throw new PipelineError('HCP_ERR_INTERNAL', `Unsupported sketch version ${version} in ${name}`, { file });
    return checkShape<SketchFile>(SketchFileShape, value, file);
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

/**
 * The statistics as CSV: every value when `minCell` is null, else the public export, its small cells and the
 * cells that would give them away blanked (`suppressSmallCells`).
 */
export function statsCsv(rows: StatRow[], minCell: number | null): string {
  const out: readonly PublicStatRow[] = minCell === null ? rows : suppressSmallCells(rows, minCell);
  const lines = [STAT_COLUMNS.join(',')];
  for (const r of out) lines.push(STAT_COLUMNS.map((c) => fmt(r[c])).join(','));
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

/** `_manifests/stats.json`: what the last `stats` merged, so `report` can tell whether the statistics are current. */
const STATS_SOURCES_VERSION = 1;

export const statsSourcesPath = (out: string) => join(out, '_manifests', 'stats.json');

/**
 * The commits a dataset's statistics are made of, one line per (hospital, scope): the `process` run that
 * committed it, or (manifests written before runs had ids) its input path and commit time. Null when the
 * dataset was not processed under `out`.
 */
export function statsSources(out: string, dataset: Dataset): string[] | null {
  if (!processed(out, dataset)) return null;
  const lines: string[] = [];
  for (const m of readManifests(out, dataset)) {
    for (const scope of Object.keys(m.scopes).sort()) {
      const e = m.scopes[scope];
      lines.push(JSON.stringify([m.hospital_id, scope, e.run ?? null, e.run ? null : e.input, e.run ? null : e.committed_at]));
    }
  }
  return lines;
}

interface StatsSources {
  version: number;
  datasets: Partial<Record<Dataset, string[]>>;
}

export const statsFiles = (out: string, dataset: Dataset) =>
  [`monthly_${dataset}.parquet`, `monthly_${dataset}.csv`, `monthly_${dataset}_public.csv`].map((f) => join(out, 'stats', f));

/**
 * Why the statistics under `out` cannot be reported on, or null when they are current: every processed dataset
 * has its three files, and `_manifests/stats.json` names exactly the commits its manifests name now.
 */
export function staleStats(out: string): { message: string; file: string } | null {
  let recorded: StatsSources | null = null;
  let damaged = false;
  try {
    const value: unknown = JSON.parse(readFileSync(statsSourcesPath(out), 'utf8'));
    // Of another shape (a hand edit, `{"version": 1}`): no record either, not a TypeError further down.
    if (StatsSourcesShape.safeParse(value).success) recorded = value as StatsSources;
    else damaged = true;
  } catch {
    /* missing or unreadable: no record of what was merged */
  }
  for (const dataset of DATASETS) {
    const now = statsSources(out, dataset);
    if (now === null) continue;
    const missing = statsFiles(out, dataset).find((f) => !existsSync(f));
    if (missing) return { message: `No ${dataset} statistics (${missing}): run stats first`, file: missing };
    const then = recorded?.version === STATS_SOURCES_VERSION ? recorded.datasets[dataset] : undefined;
    if (damaged) return { message: `${statsSourcesPath(out)} is not a record this engine wrote (damaged?): run stats first`, file: statsSourcesPath(out) };
    if (!then || then.length !== now.length || then.some((x, i) => x !== now[i])) {
      return { message: `Out-of-date ${dataset} statistics: a process committed since the last stats (${statsSourcesPath(out)}): run stats first`, file: statsSourcesPath(out) };
    }
  }
  return null;
}

/**
 * Merges the sketches of every dataset processed under `out` and writes the statistics files: a dataset
 * processed without accepted rows gets them with the header only, so none from an earlier run is left behind.
 * Then `_manifests/stats.json` records the commits merged, read before the sketches (a manifest is written after
 * its sketch): a `process` committing meanwhile makes the record differ from the manifests, never match them.
 */
export function writeStats(out: string, minCell: number): StatsSummary[] {
  const summaries: StatsSummary[] = [];
  const sources: StatsSources = { version: STATS_SOURCES_VERSION, datasets: {} };
  for (const dataset of DATASETS) {
    const merged = statsSources(out, dataset);
    if (merged === null) continue;
    sources.datasets[dataset] = merged;
    const files = readSketches(out, dataset);
    const rows = computeStats(dataset, files);
    const paths = statsFiles(out, dataset);
    writeFileAtomic(paths[0], new Uint8Array(statsParquet(rows)));
    writeFileAtomic(paths[1], statsCsv(rows, null));
    writeFileAtomic(paths[2], statsCsv(rows, minCell));
    summaries.push({ dataset, rows: rows.length, hospitals: files.length, files: paths });
  }
  if (summaries.length === 0) throw new PipelineError('HCP_ERR_NO_SKETCHES', `Nothing processed under ${out} (no manifests): run process first`, { file: out });
  writeJsonAtomic(statsSourcesPath(out), sources);
  return summaries;
}
