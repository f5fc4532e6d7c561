/**
 * The bench's command line, settled once into a frozen object. Every
 * message names the flag it is about.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MAX_WORKERS } from '../../src/config.js';

export interface BenchOptions {
  /** Rows of the main comparison (engine vs DuckDB vs pandas, workers, chunk sizes). */
  readonly rows: number;
  /** Input sizes of the scaling test (peak RSS and throughput vs size). */
  readonly sizes: readonly number[];
  readonly workers: readonly number[];
  readonly chunkSizes: readonly number[];
  readonly repeat: number;
  readonly skipPandas: boolean;
  /** Why pandas is left out (null when it runs). */
  readonly pandasSkipReason: string | null;
  readonly skipDuckdb: boolean;
  /** Rows to run pandas at (default: rows); its throughput is extrapolated when smaller. */
  readonly pandasRows: number;
  readonly pandasTimeoutS: number;
  readonly python: string;
  readonly duckdbThreads: number;
  readonly out: string;
  readonly writeDocs: boolean;
  readonly docs: string;
  readonly seed: number;
  readonly hospitals: number;
  readonly asOf: string;
  readonly keepOutputs: boolean;
  /** The compiled engine to measure (a copy is taken at the start). */
  readonly engineDist: string;
  /** Re-render this results JSON instead of measuring. */
  readonly render: string | null;
  /** --write-docs / --no-write-docs as given (null: not given). */
  readonly writeDocsGiven: boolean | null;
}

export const USAGE = `Usage: npm run bench -- [options]

  --rows N             rows of the main comparison (default 20000; the issue's run: 10000000)
  --sizes a,b          input sizes for the scaling test (default: 1000000,N when N >= 1M, else N/10,N)
  --workers 1,2        worker counts for the scaling test; the largest is the comparison run (default 1,2)
  --chunk-sizes a,b    chunk sizes in bytes, at the largest worker count (default 524288,2097152,8388608)
  --repeat K           rounds: runs of every configuration; the median wall time is reported
                       (default 3 when --rows >= 1000000, else 1)
  --skip-pandas        leave out pandas + pandera (also skipped when the venv is missing)
  --skip-duckdb        leave out DuckDB
  --pandas-rows N      run pandas at N rows and extrapolate its throughput (default: --rows)
  --pandas-timeout S   give up on pandas after S seconds, then retry at 2M rows and extrapolate (default 3600)
  --python PATH        interpreter with pandas, pandera, pyarrow (default bench/.venv/bin/python)
  --duckdb-threads N   DuckDB threads (default 2)
  --out DIR            inputs, tool outputs and results (default bench/out)
  --write-docs / --no-write-docs   update docs/PERFORMANCE.md (default: on when --rows >= 1000000;
                       otherwise the report goes to DIR/PERFORMANCE.md)
  --seed S, --hospitals H          generator settings (default 2024, 20)
  --as-of YYYY-MM-DD   the rules' as-of date for every tool (default 2025-01-01: reproducible)
  --keep-outputs       keep every tool's output under DIR/runs (default: removed after measuring)
  --engine-dist DIR    the compiled engine to measure (default dist; e.g. bench/out/engine/<build>/dist
                       to measure again the exact build of an earlier run)
  --render FILE        no measuring: re-render a recorded results-<rows>.json into the report`;

function positiveInt(v: string, flag: string): number {
  const s = v.replace(/_/g, '');
  if (!/^\d+$/.test(s) || Number(s) < 1) throw new Error(`--${flag} must be a positive integer (got "${v}")`);
  return Number(s);
}

const list = (v: string, flag: string) => v.split(',').filter((x) => x !== '').map((x) => positiveInt(x.trim(), flag));

/** Parses argv (without node and script); throws with a message naming the flag. */
export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  const { values: v } = parseArgs({
    args: [...argv],
    options: {
      rows: { type: 'string' },
      sizes: { type: 'string' },
      workers: { type: 'string' },
      'chunk-sizes': { type: 'string' },
      repeat: { type: 'string' },
      'skip-pandas': { type: 'boolean' },
      'skip-duckdb': { type: 'boolean' },
      'pandas-rows': { type: 'string' },
      'pandas-timeout': { type: 'string' },
      python: { type: 'string' },
      'duckdb-threads': { type: 'string' },
      out: { type: 'string' },
      'write-docs': { type: 'boolean' },
      'no-write-docs': { type: 'boolean' },
      seed: { type: 'string' },
      hospitals: { type: 'string' },
      'as-of': { type: 'string' },
      'keep-outputs': { type: 'boolean' },
      render: { type: 'string' },
      'engine-dist': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (v.help) return 'help';
  const rows = v.rows === undefined ? 20_000 : positiveInt(v.rows, 'rows');
  const defaultSizes = rows >= 1_000_000 ? [1_000_000, rows] : [Math.max(100, Math.round(rows / 10)), rows];
  const sizes = [...new Set(v.sizes === undefined ? defaultSizes : list(v.sizes, 'sizes'))].sort((a, b) => a - b);
  const workers = [...new Set(v.workers === undefined ? [1, 2] : list(v.workers, 'workers'))].sort((a, b) => a - b);
  const chunkSizes = [...new Set(v['chunk-sizes'] === undefined ? [524_288, 2_097_152, 8_388_608] : list(v['chunk-sizes'], 'chunk-sizes'))].sort((a, b) => a - b);
  if (chunkSizes.some((c) => c < 1024)) throw new Error('--chunk-sizes must each be at least 1024 bytes (the engine minimum)');
  // The engine refuses more (src/config.ts), which the largest count, run after the reference jobs, would find late.
  if (workers.some((w) => w > MAX_WORKERS)) throw new Error(`--workers must each be at most ${MAX_WORKERS} (the engine maximum)`);
  const asOf = v['as-of'] ?? '2025-01-01';
  if (!/^\d{4}-\d{2}-\d{2}$/.test(asOf)) throw new Error(`--as-of must be YYYY-MM-DD (got "${asOf}")`);
  const python = v.python ?? 'bench/.venv/bin/python';
  if (v.python !== undefined && !existsSync(python)) throw new Error(`--python: ${python} does not exist`);
  if (v['engine-dist'] !== undefined && !existsSync(`${v['engine-dist']}/src/cli.js`)) throw new Error(`--engine-dist: ${v['engine-dist']}/src/cli.js does not exist`);
  return Object.freeze({
    rows,
    sizes,
    workers,
    chunkSizes,
    // The shared machine is noisy: big runs take the median of 3 by default.
    repeat: v.repeat === undefined ? (rows >= 1_000_000 ? 3 : 1) : positiveInt(v.repeat, 'repeat'),
    skipPandas: (v['skip-pandas'] ?? false) || !existsSync(python),
    pandasSkipReason: v['skip-pandas'] ? '--skip-pandas' : existsSync(python) ? null : `${python} not found (see bench/README.md to create the venv)`,
    skipDuckdb: v['skip-duckdb'] ?? false,
    pandasRows: v['pandas-rows'] === undefined ? rows : Math.min(rows, positiveInt(v['pandas-rows'], 'pandas-rows')),
    pandasTimeoutS: v['pandas-timeout'] === undefined ? 3600 : positiveInt(v['pandas-timeout'], 'pandas-timeout'),
    python,
    duckdbThreads: v['duckdb-threads'] === undefined ? 2 : positiveInt(v['duckdb-threads'], 'duckdb-threads'),
    out: v.out ?? 'bench/out',
    writeDocs: v['no-write-docs'] ? false : (v['write-docs'] ?? rows >= 1_000_000),
    docs: 'docs/PERFORMANCE.md',
    seed: v.seed === undefined ? 2024 : v.seed === '0' ? 0 : positiveInt(v.seed, 'seed'),
    hospitals: v.hospitals === undefined ? 20 : positiveInt(v.hospitals, 'hospitals'),
    asOf,
    keepOutputs: v['keep-outputs'] ?? false,
    render: v.render ?? null,
    engineDist: v['engine-dist'] ?? 'dist',
    writeDocsGiven: v['no-write-docs'] ? false : (v['write-docs'] ?? null),
  });
}
