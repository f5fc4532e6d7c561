/**
 * The measured jobs: the engine (`process` then `stats`, as two CLI runs),
 * the DuckDB and pandas + pandera references, the engine's `partition` (the
 * Airflow path's split) and the read floor. Each
 * returns one Sample; `summarise` folds repeats into a median.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Input } from './data.js';
import { readIfExists } from './docs.js';
import { median } from './format.js';
import { ensureOk, measure, type Measured } from './proc.js';
import type { CoresResult } from '../cores.js';
import { ENGINE_NODE_FLAGS } from '../../src/config.js';

export type Tool = 'engine' | 'duckdb' | 'pandas' | 'partition';

/** Not a secret: the benchmark's pseudonym key, the same for every tool. */
export const BENCH_KEY = 'hcp-bench-key-not-a-secret';

export interface Sample {
  readonly wallMs: number;
  readonly maxRssBytes: number | null;
  /** User + system CPU seconds of the child(ren): less sensitive to a busy machine than wall time. */
  readonly cpuS: number | null;
  readonly accepted: number;
  readonly rejected: number;
  /** The tool's own step timings (engine: stages summed across workers). */
  readonly timings: Record<string, number>;
  /** The tool's own in-process duration. */
  readonly durationMs: number;
  readonly extra: Record<string, unknown>;
}

export interface Result {
  readonly tool: Tool;
  readonly rows: number;
  readonly bytes: number;
  readonly workers?: number;
  readonly chunkSize?: number | null;
  /** Median wall time over the repeats. */
  readonly wallMs: number;
  readonly wallMsRuns: readonly number[];
  readonly rowsPerS: number;
  readonly mbPerS: number;
  /** Largest peak RSS over the repeats. */
  readonly maxRssBytes: number | null;
  /** Median CPU seconds (user + system) over the repeats. */
  readonly cpuS: number | null;
  readonly accepted: number;
  readonly rejected: number;
  /** Timings of the median run. */
  readonly timings: Record<string, number>;
  readonly durationMs: number;
  readonly extra: Record<string, unknown>;
  /** Set when this tool ran on fewer rows than the comparison and its throughput stands in for it. */
  readonly extrapolatedTo?: number;
  /** The one CPU the runs were pinned to (`taskset -c`), when they were. */
  readonly cpu?: number | null;
  /** Every run's `extra`, in round order (absent in results recorded before it existed). */
  readonly runExtras?: readonly Record<string, unknown>[];
}

export interface JobContext {
  /** The engine CLI measured (a snapshot of dist/src/cli.js). */
  readonly cli: string;
  readonly out: string;
  readonly asOf: string;
  readonly keepOutputs: boolean;
  readonly duckdbThreads: number;
  readonly python: string;
  readonly registryPath: string;
  readonly pandasTimeoutS: number;
}

const cpu = (...ms: Measured[]): number | null => (ms.every((m) => m.userS !== null && m.sysS !== null) ? ms.reduce((a, m) => a + m.userS! + m.sysS!, 0) : null);

const env = () => ({ ...process.env, HCP_PSEUDONYM_KEY: BENCH_KEY });
const rowsOf = (j: Record<string, unknown>) => j.rows as { read: number; accepted: number; rejected: number };

function runDir(ctx: JobContext, label: string): string {
  const dir = join(ctx.out, 'runs', label);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

const cleanup = (ctx: JobContext, dir: string) => {
  if (!ctx.keepOutputs) rmSync(dir, { recursive: true, force: true });
};

export const TASKSET = '/usr/bin/taskset';

/**
 * The CPUs this process may run on, from `Cpus_allowed_list` in
 * /proc/self/status (`0-1`, `0,2-3`), or null where that is not available.
 */
export function allowedCpus(status: string | null = readIfExists('/proc/self/status')): number[] | null {
  const m = status === null ? null : /^Cpus_allowed_list:\s*(\S+)/m.exec(status);
  if (!m) return null;
  const cpus: number[] = [];
  for (const part of m[1].split(',')) {
    const [a, b = a] = part.split('-').map(Number);
    for (let c = a; c <= b; c++) cpus.push(c);
  }
  return cpus;
}

/**
 * The one CPU a single-core run is pinned to (the first one this process
 * may use), or null when it cannot be pinned: fewer than two CPUs, or no
 * `taskset` (util-linux).
 */
export function oneCoreCpu(): number | null {
  const cpus = allowedCpus();
  return cpus && cpus.length >= 2 && existsSync(TASKSET) ? cpus[0] : null;
}

/**
 * The engine: `process` (workers, chunk size) then `stats`, timed as one
 * job; with `pinCpu`, both are pinned to that one CPU (`taskset -c`), so the
 * coordinator and V8's background threads share the worker's core.
 */
export async function engineJob(ctx: JobContext, input: Input, workers: number, chunkSize: number | null, pinCpu: number | null = null): Promise<Sample> {
  const dir = runDir(ctx, `engine-${input.rows}-w${workers}-c${chunkSize ?? 'default'}${pinCpu === null ? '' : `-cpu${pinCpu}`}`);
  const args = [...ENGINE_NODE_FLAGS, ctx.cli, 'process', '--dataset', 'vitals', '--input', input.path, '--out', dir, '--workers', String(workers), '--as-of', ctx.asOf, '--no-progress'];
  if (chunkSize !== null) args.push('--chunk-size', String(chunkSize));
  const node = (a: string[]) => (pinCpu === null ? measure(process.execPath, a, { env: env() }) : measure(TASKSET, ['-c', String(pinCpu), process.execPath, ...a], { env: env() }));
  const p = ensureOk(await node(args), 'engine process');
  const s = ensureOk(await node([...ENGINE_NODE_FLAGS, ctx.cli, 'stats', '--out', dir]), 'engine stats');
  cleanup(ctx, dir);
  const rows = rowsOf(p.json!);
  const rss = [p.maxRssBytes, s.maxRssBytes].filter((x): x is number => x !== null);
  return {
    wallMs: p.wallMs + s.wallMs,
    maxRssBytes: rss.length ? Math.max(...rss) : null,
    cpuS: cpu(p, s),
    accepted: rows.accepted,
    rejected: rows.rejected,
    timings: p.json!.timings_ms as Record<string, number>,
    durationMs: (p.json!.duration_ms as number) + ((s.json!.duration_ms as number) ?? 0),
    extra: {
      process_wall_ms: Math.round(p.wallMs),
      stats_wall_ms: Math.round(s.wallMs),
      process_rss: p.maxRssBytes,
      stats_rss: s.maxRssBytes,
      // CPU by thread and wall time by phase, from the process summary (cpu_ms is absent where the system does not report thread times).
      cpu_ms: p.json!.cpu_ms ?? null,
      phases_ms: p.json!.phases_ms ?? null,
    },
  };
}

/**
 * The engine's `partition` of the input (the Airflow DAG's first step: one
 * file and line map per hospital, no row rules). `accepted`: records split
 * into a hospital's file; `rejected`: into `hospital_id=__invalid__.csv`.
 */
export async function partitionJob(ctx: JobContext, input: Input): Promise<Sample> {
  const dir = runDir(ctx, `partition-${input.rows}`);
  const m = ensureOk(await measure(process.execPath, [...ENGINE_NODE_FLAGS, ctx.cli, 'partition', '--dataset', 'vitals', '--input', input.path, '--landing', dir, '--no-progress']), 'engine partition');
  cleanup(ctx, dir);
  const j = m.json!;
  const parts = j.partitions as { hospital_id: string; rows: number }[];
  const invalid = parts.filter((p) => p.hospital_id === '__invalid__').reduce((a, p) => a + p.rows, 0);
  return {
    wallMs: m.wallMs,
    maxRssBytes: m.maxRssBytes,
    cpuS: cpu(m),
    accepted: (j.rows_read as number) - invalid,
    rejected: invalid,
    timings: {},
    durationMs: j.duration_ms as number,
    extra: { files: parts.length },
  };
}

/** DuckDB doing the same job in SQL (bench/duckdb-job.ts). */
export async function duckdbJob(ctx: JobContext, input: Input): Promise<Sample> {
  const dir = runDir(ctx, `duckdb-${input.rows}`);
  const m = ensureOk(
    await measure(process.execPath, ['dist/bench/duckdb-job.js', '--input', input.path, '--out', dir, '--threads', String(ctx.duckdbThreads), '--as-of', ctx.asOf], { env: env() }),
    'DuckDB job',
  );
  cleanup(ctx, dir);
  const j = m.json!;
  const rows = rowsOf(j);
  return {
    wallMs: m.wallMs,
    maxRssBytes: m.maxRssBytes,
    cpuS: cpu(m),
    accepted: rows.accepted,
    rejected: rows.rejected,
    timings: j.timings_ms as Record<string, number>,
    durationMs: j.duration_ms as number,
    extra: { version: j.version, threads: j.threads, memory_limit: j.memory_limit, quantiles: j.quantiles},
  };
}

/** pandas + pandera doing the same job (bench/pandas_job.py). */
export async function pandasJob(ctx: JobContext, input: Input): Promise<Sample> {
  const dir = runDir(ctx, `pandas-${input.rows}`);
  const m = await measure(ctx.python, ['bench/pandas_job.py', '--input', input.path, '--out', dir, '--registry', ctx.registryPath, '--as-of', ctx.asOf], {
    env: env(),
    timeoutMs: ctx.pandasTimeoutS * 1000,
  });
  cleanup(ctx, dir);
  ensureOk(m, 'pandas + pandera job');
  const j = m.json!;
  const rows = rowsOf(j);
  return {
    wallMs: m.wallMs,
    maxRssBytes: m.maxRssBytes,
    cpuS: cpu(m),
    accepted: rows.accepted,
    rejected: rows.rejected,
    timings: j.timings_ms as Record<string, number>,
    durationMs: j.duration_ms as number,
    extra: { versions: j.versions},
  };
}

export interface Floor {
  readonly bytes: number;
  readonly newlines: number;
  readonly durationMs: number;
  readonly mbPerS: number;
}

/** The read floor (bench/floor.ts), timed in-process: the best of `repeat` runs. */
export async function floorJob(input: Input, repeat: number): Promise<Floor> {
  let best: Floor | null = null;
  for (let i = 0; i < repeat; i++) {
    const j = ensureOk(await measure(process.execPath, ['dist/bench/floor.js', input.path]), 'read floor').json!;
    const f = { bytes: j.bytes as number, newlines: j.newlines as number, durationMs: j.duration_ms as number, mbPerS: j.mb_per_s as number };
    if (!best || f.mbPerS > best.mbPerS) best = f;
  }
  return best!;
}

/**
 * The machine's own scaling (bench/cores.ts): fixed work on one thread,
 * then on `threads` at once, `rounds` times. Work per thread grows with the
 * run's size (about 1 s of arithmetic at 2M rows and more, milliseconds in
 * CI's tiny run).
 */
export async function coresJob(threads: number, rows: number, rounds: number): Promise<CoresResult> {
  const steps = Math.min(150_000_000, Math.max(200_000, rows * 75));
  const args = ['dist/bench/cores.js', '--threads', String(threads), '--steps', String(steps), '--rounds', String(rounds)];
  return ensureOk(await measure(process.execPath, args), 'cores reference').json as unknown as CoresResult;
}

/** Folds repeated samples of one configuration: median wall time, largest RSS, timings of the median run. */
export function summarise(tool: Tool, input: Input, samples: readonly Sample[], more: Partial<Result> = {}): Result {
  const wall = median(samples.map((s) => s.wallMs));
  const mid = [...samples].sort((a, b) => Math.abs(a.wallMs - wall) - Math.abs(b.wallMs - wall))[0];
  const rss = samples.map((s) => s.maxRssBytes).filter((x): x is number => x !== null);
  return {
    tool,
    rows: input.rows,
    bytes: input.bytes,
    wallMs: Math.round(wall),
    wallMsRuns: samples.map((s) => Math.round(s.wallMs)),
    rowsPerS: input.rows / (wall / 1000),
    mbPerS: input.bytes / 1e6 / (wall / 1000),
    maxRssBytes: rss.length ? Math.max(...rss) : null,
    cpuS: samples.every((x) => x.cpuS !== null) ? median(samples.map((x) => x.cpuS!)) : null,
    accepted: mid.accepted,
    rejected: mid.rejected,
    timings: mid.timings,
    durationMs: mid.durationMs,
    extra: mid.extra,
    runExtras: samples.map((x) => x.extra),
    ...more,
  };
}
