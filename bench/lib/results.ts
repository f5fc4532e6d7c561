/**
 * One benchmark run as data (written to results-<rows>.json) and the
 * targets of the issue, checked against ratios measured in that run.
 */
import type { Input } from './data.js';
import type { CoresResult } from '../cores.js';
import { median } from './format.js';
import type { Floor, Result } from './jobs.js';
import type { Machine } from './machine.js';
import type { BenchOptions } from './options.js';

export const STAGES = ['read', 'parse', 'rules', 'transform', 'dedupe', 'sketch', 'parquet_encode', 'write'] as const;

export interface BenchResults {
  readonly schema: 1;
  readonly date: string;
  readonly command: string;
  readonly options: BenchOptions;
  readonly machine: Machine;
  readonly loadAtEnd: readonly number[];
  readonly versions: Record<string, string | null>;
  readonly input: Input;
  readonly floor: Floor;
  /** What the machine gives more threads (bench/cores.ts); absent in results recorded before it existed. */
  readonly cores?: CoresResult | null;
  /** The engine at the largest worker count and default chunk size. */
  readonly engine: Result;
  readonly duckdb: Result | null;
  readonly pandas: Result | null;
  readonly workers: readonly Result[];
  /** The engine with one worker pinned to one CPU (absent in results recorded before it existed, null when not run). */
  readonly oneCore?: Result | null;
  readonly chunks: readonly Result[];
  readonly sizes: readonly Result[];
  /** The engine's `partition` of the input (absent in results recorded before it existed). */
  readonly partition?: Result | null;
  readonly targets: readonly Target[];
  readonly notes: readonly string[];
  readonly elapsedS: number;
}

export interface Target {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  /** null: not measured in this run. */
  readonly pass: boolean | null;
}

/**
 * `a`'s throughput over `b`'s (rows/s ÷ rows/s), paired by round: each
 * round runs every job once, so the two runs of a round are close in time;
 * the median of the rounds' ratios is steadier than the ratio of the
 * medians when the shared host's speed drifts during a run (a host that
 * speeds up pairs one tool's fast late runs with the other's middle run).
 * Falls back to the ratio of the medians when the two have different
 * numbers of runs (a pandas retry at a smaller size).
 */
export function pairedRatio(a: Result, b: Result): number {
  const n = a.wallMsRuns.length;
  if (n === 0 || n !== b.wallMsRuns.length) return a.rowsPerS / b.rowsPerS;
  const each = a.wallMsRuns.map((wa, i) => a.rows / wa / (b.rows / b.wallMsRuns[i]));
  return median(each);
}

/** Engine throughput over the other tool's (same input, same run), paired by round (`pairedRatio`). */
export const speedup = (engine: Result, other: Result | null): number | null => (other ? pairedRatio(engine, other) : null);

/** The same ratio by CPU time per row (user + system): steadier than wall time on a busy machine. */
export const cpuSpeedup = (engine: Result, other: Result | null): number | null =>
  other && engine.cpuS && other.cpuS ? other.cpuS / other.rows / (engine.cpuS / engine.rows) : null;

export const MB = 1e6;

/** The targets, each as measured value vs threshold. */
export function checkTargets(r: Omit<BenchResults, 'targets'>): Target[] {
  const t: Target[] = [];
  const fmt = (x: number) => `${x.toFixed(2)}×`;
  const vsDuck = speedup(r.engine, r.duckdb);
  t.push({ name: 'throughput vs DuckDB (same job, 2 threads)', target: '≥ 1.0×', measured: vsDuck === null ? 'not run' : fmt(vsDuck), pass: vsDuck === null ? null : vsDuck >= 1.0 });
  const vsPandas = speedup(r.engine, r.pandas);
  t.push({
    name: 'throughput vs pandas + pandera',
    target: '≥ 10×',
    measured: vsPandas === null ? 'not run' : fmt(vsPandas) + (r.pandas?.extrapolatedTo ? ` (pandas at ${r.pandas.rows.toLocaleString('en-US')} rows)` : ''),
    pass: vsPandas === null ? null : vsPandas >= 10,
  });
  const w1 = r.workers.find((w) => w.workers === 1);
  const w2 = r.workers.find((w) => w.workers === 2);
  const scale = w1 && w2 ? pairedRatio(w2, w1) : null;
  t.push({ name: '2 workers vs 1 worker', target: '≥ 1.7×', measured: scale === null ? 'not run' : fmt(scale), pass: scale === null ? null : scale >= 1.7 });
  const rss = r.engine.maxRssBytes;
  t.push({ name: `peak RSS at ${r.input.rows.toLocaleString('en-US')} rows`, target: '≤ 300 MB', measured: rss === null ? 'n/a' : `${Math.round(rss / MB).toLocaleString('en-US')} MB`, pass: rss === null ? null : rss <= 300 * MB });
  const small = r.sizes[0];
  const large = r.sizes[r.sizes.length - 1];
  const flat = small && large && small !== large && small.maxRssBytes && large.maxRssBytes ? large.maxRssBytes / small.maxRssBytes - 1 : null;
  t.push({
    name: small && large ? `peak RSS flat in input size (${small.rows.toLocaleString('en-US')} → ${large.rows.toLocaleString('en-US')} rows)` : 'peak RSS flat in input size',
    target: '≤ +10 %',
    measured: flat === null ? 'not run' : `${flat >= 0 ? '+' : ''}${(flat * 100).toFixed(1)} %`,
    pass: flat === null ? null : flat <= 0.1,
  });
  const missing = STAGES.filter((s) => typeof r.engine.timings[s] !== 'number');
  t.push({ name: 'per-stage timings in the run summary', target: STAGES.join(', '), measured: missing.length ? `missing: ${missing.join(', ')}` : 'all present', pass: missing.length === 0 });
  const total = STAGES.reduce((a, s) => a + (r.engine.timings[s] ?? 0), 0);
  const pq = total > 0 ? (r.engine.timings.parquet_encode ?? 0) / total : null;
  t.push({ name: 'parquet_encode share of stage time', target: '≤ ~33 %', measured: pq === null ? 'n/a' : `${(pq * 100).toFixed(1)} %`, pass: pq === null ? null : pq <= 1 / 3 + 0.005 });
  return t;
}
