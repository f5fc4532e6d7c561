/**
 * Options settled once, at the edge: argv and the environment become one
 * frozen config object. Every message names the option it is about.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { usageError, PipelineError } from './errors.js';
import { pushgatewayUrlProblem, redactUrl } from './metrics/url.js';
import { FILTER_BITS_RANGE } from './merge/dedupe.js';
import { DATASETS, type Dataset } from './registry.js';
import { monthBounds, parseIsoDate } from './rules/fields.js';
import { DEMO_KEY } from './transform/pseudonym.js';

export interface Config {
  readonly command: string;
  readonly workers: number;
  readonly chunkSize: number;
  readonly maxRecordBytes: number;
  readonly rowGroupRows: number;
  readonly maxBufferedRows: number;
  /** Duplicate filter size in bits; null: sized for the input (src/merge/dedupe.ts). */
  readonly dedupeFilterBits: number | null;
  readonly period: string | null;
  readonly periodBounds: { first: number; last: number } | null;
  readonly asOf: string;
  readonly asOfDay: number;
  readonly maxRejectRate: number;
  readonly minCell: number;
  readonly metricsPort: number | null;
  readonly pushgateway: string | null;
  readonly metricsFile: string | null;
  readonly requireKey: boolean;
  readonly progress: boolean;
  readonly debug: boolean;
  readonly out: string;
  readonly dataset: Dataset | null;
  readonly input: string | null;
  readonly landing: string | null;
  readonly vitals: string;
  readonly labs: string;
  readonly rows: number;
  readonly seed: number;
  readonly hospitals: number | null;
  readonly months: number | null;
  readonly defectRate: number | null;
  readonly year: number | null;
}

export const OPTIONS = {
  workers: { type: 'string' },
  'chunk-size': { type: 'string' },
  'max-record-bytes': { type: 'string' },
  'row-group-rows': { type: 'string' },
  period: { type: 'string' },
  'as-of': { type: 'string' },
  'max-reject-rate': { type: 'string' },
  'min-cell': { type: 'string' },
  'metrics-port': { type: 'string' },
  pushgateway: { type: 'string' },
  'metrics-file': { type: 'string' },
  'require-key': { type: 'boolean' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  out: { type: 'string' },
  dataset: { type: 'string' },
  input: { type: 'string' },
  landing: { type: 'string' },
  vitals: { type: 'string' },
  labs: { type: 'string' },
  rows: { type: 'string' },
  seed: { type: 'string' },
  hospitals: { type: 'string' },
  months: { type: 'string' },
  'defect-rate': { type: 'string' },
  year: { type: 'string' },
} as const;

/**
 * The most worker threads: each is a V8 isolate of ~13 MB, and the coordinator's per-row work bounds the engine
 * near 2.8M rows/s, a few workers' worth (docs/ARCHITECTURE.md, "Scaling out"). Thousands of threads ended in
 * V8 aborting with "Fatal process OOM" (exit 133) instead of a usage error.
 */
export const MAX_WORKERS = 64;

/** `--workers` unless given: the cores, at most MAX_WORKERS. */
export const defaultWorkers = (cores = availableParallelism()): number => Math.min(MAX_WORKERS, Math.max(1, cores));

/** Buffers of this many bytes are the most a chunk or a record may take (a larger --chunk-size cannot be allocated). */
const MAX_BUFFER_BYTES = 1 << 30;

function int(v: string | undefined, name: string, dflt: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw usageError(`--${name} must be an integer ${range} (got "${v}")`, name);
  }
  return Number(v);
}

/** A path option: an empty value would silently mean the current directory (`--out=`), or no file at all (`--metrics-file=`). */
function path(v: string | undefined, name: string): string | undefined {
  if (v === '') throw usageError(`--${name} must not be empty`, name);
  return v;
}

function rate(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (!/^\d*\.?\d+$/.test(v) || !(x >= 0 && x <= 1)) throw usageError(`--${name} must be a number between 0 and 1 (got "${v}")`, name);
  return x;
}

export function parseCli(argv: string[]): { config: Config; help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (e) {
    // One line, but all of it: node:util's first line alone ("argument is ambiguous") does not say what to do.
    throw usageError((e as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  // A value option given twice (`--input a.csv --input b.csv`) would silently keep the last: say so instead.
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option' || OPTIONS[t.name as keyof typeof OPTIONS].type !== 'string') continue;
    if (seen.has(t.name)) throw usageError(`--${t.name} is given more than once`, t.name);
    seen.add(t.name);
  }
  const v = parsed.values;
  const command = parsed.positionals[0] ?? '';
  if (parsed.positionals.length > 1) throw usageError(`Unexpected argument "${parsed.positionals[1]}"`);
  const today = new Date().toISOString().slice(0, 10);
  const asOf = v['as-of'] ?? today;
  const asOfDay = parseIsoDate(asOf);
  if (Number.isNaN(asOfDay)) throw usageError(`--as-of must be a date YYYY-MM-DD (got "${asOf}")`, 'as-of');
  const period = v.period ?? null;
  const periodBounds = period === null ? null : monthBounds(period);
  if (period !== null && !periodBounds) throw usageError(`--period must be a month YYYY-MM (got "${period}")`, 'period');
  let dataset: Dataset | null = null;
  if (v.dataset !== undefined) {
    if (!(DATASETS as readonly string[]).includes(v.dataset)) throw usageError(`--dataset must be one of ${DATASETS.join(', ')} (got "${v.dataset}")`, 'dataset');
    dataset = v.dataset as Dataset;
  }
  const metricsPort = v['metrics-port'] === undefined ? null : int(v['metrics-port'], 'metrics-port', 0, 0);
  if (metricsPort !== null && metricsPort > 65535) throw usageError('--metrics-port must be at most 65535', 'metrics-port');
  const gatewayProblem = v.pushgateway === undefined ? null : pushgatewayUrlProblem(v.pushgateway);
  // Quoted redacted: the value may hold a password or a token.
  if (gatewayProblem) throw usageError(`--pushgateway ${gatewayProblem} (got "${redactUrl(v.pushgateway!)}")`, 'pushgateway');
  const config: Config = {
    command,
    workers: int(v.workers, 'workers', defaultWorkers(), 1, MAX_WORKERS),
    chunkSize: int(v['chunk-size'], 'chunk-size', 2 << 20, 1024, MAX_BUFFER_BYTES),
    maxRecordBytes: int(v['max-record-bytes'], 'max-record-bytes', 1 << 20, 1024, MAX_BUFFER_BYTES),
    rowGroupRows: int(v['row-group-rows'], 'row-group-rows', 128_000),
    // Rows waiting in memory before partitions spill (src/merge/partitions.ts).
    // Two knobs for the tests (docs/ARCHITECTURE.md, error handling):
    // HCP_MAX_BUFFERED_ROWS=16 makes every chunk spill, and
    // HCP_DEDUPE_FILTER_BITS=512 makes nearly every row a duplicate suspect.
    maxBufferedRows: positiveEnv('HCP_MAX_BUFFERED_ROWS') ?? 400_000,
    // Read only by the commands that filter duplicates: a bad value does not stop `validate` or `--help`.
    dedupeFilterBits: (command === 'process' || command === 'run') && !v.help ? filterBitsEnv('HCP_DEDUPE_FILTER_BITS') : null,
    period,
    periodBounds,
    asOf,
    asOfDay,
    maxRejectRate: rate(v['max-reject-rate'], 'max-reject-rate', 0.05),
    minCell: int(v['min-cell'], 'min-cell', 11, 0),
    metricsPort,
    pushgateway: v.pushgateway ?? null,
    metricsFile: path(v['metrics-file'], 'metrics-file') ?? null,
    requireKey: v['require-key'] ?? false,
    progress: v['no-progress'] ? false : (v.progress ?? process.stderr.isTTY === true),
    debug: v.debug ?? false,
    out: path(v.out, 'out') ?? 'output',
    dataset,
    input: path(v.input, 'input') ?? null,
    landing: path(v.landing, 'landing') ?? null,
    vitals: path(v.vitals, 'vitals') ?? 'data/vitals_2024.csv',
    labs: path(v.labs, 'labs') ?? 'data/lab_results_2024.csv',
    rows: int(v.rows, 'rows', 1000, 0),
    seed: int(v.seed, 'seed', 42, 0),
    hospitals: v.hospitals === undefined ? null : int(v.hospitals, 'hospitals', 8),
    months: v.months === undefined ? null : int(v.months, 'months', 12),
    defectRate: v['defect-rate'] === undefined ? null : rate(v['defect-rate'], 'defect-rate', 0.03),
    year: v.year === undefined ? null : int(v.year, 'year', 2024),
  };
  return { config: Object.freeze(config), help: v.help ?? false };
}

/** Requires an option for a command. */
export function need<T>(value: T | null, name: string, command: string): T {
  if (value === null || value === undefined) throw usageError(`${command} needs --${name}`, name);
  return value;
}

/**
 * The pseudonymisation key from the environment, or the demo key (unless --require-key). A key that is set but
 * unusable is exit 2 (HCP_ERR_KEY_INVALID), never the demo key, and the message never quotes it:
 * - not valid UTF-8: Node decodes the environment as UTF-8, every invalid byte sequence becoming U+FFFD, so
 *   `a\xff\xfeb` and `a\xfd\xfcb` gave the same pseudonyms, and a binary key (bytes from /dev/urandom) kept
 *   little of its entropy;
 * - only white space: a blank that slipped into a secret store, not a secret.
 */
export function resolveKey(requireKey: boolean): { key: string; demo: boolean } {
  const key = process.env.HCP_PSEUDONYM_KEY;
  if (key && key.length > 0) {
    if (key.includes('\uFFFD')) {
      throw new PipelineError(
        'HCP_ERR_KEY_INVALID',
        'HCP_PSEUDONYM_KEY is not valid UTF-8 text (or holds U+FFFD): its invalid bytes would all read as the same character, so different keys would give the same pseudonyms; use text, e.g. hex or base64 (openssl rand -hex 32)',
        { option: 'HCP_PSEUDONYM_KEY' },
      );
    }
    if (key.trim() === '') {
      throw new PipelineError('HCP_ERR_KEY_INVALID', 'HCP_PSEUDONYM_KEY holds only white space: set a secret, e.g. openssl rand -hex 32', { option: 'HCP_PSEUDONYM_KEY' });
    }
    return { key, demo: false };
  }
  if (requireKey) throw new PipelineError('HCP_ERR_KEY_MISSING');
  return { key: DEMO_KEY, demo: true };
}

/**
 * V8 flags the engine is launched with (package.json scripts, the `bin`
 * shebang, the DAG's default HCP_CLI, the benchmark): a 2 MB semi-space
 * keeps each thread's young generation small, about 90 MB less peak RSS at
 * no measurable cost in time (docs/performance/HISTORY.md, "How it got here").
 */
export const ENGINE_NODE_FLAGS = ['--max-semi-space-size=2'] as const;

/** A positive number from the environment, or null when unset or not one. */
function positiveEnv(name: string): number | null {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : null;
}

/**
 * The duplicate filter's size from the environment (a test knob): null when unset, empty or 0 (sized for the
 * input); else a power of two within FILTER_BITS_RANGE, or a usage error naming the variable. `1e12` and
 * `1099511627776` failed the run with exit 1 (an internal error) when the filter was made.
 */
function filterBitsEnv(name: string): number | null {
  const v = process.env[name];
  if (v === undefined || v === '' || v === '0') return null;
  const { min, max } = FILTER_BITS_RANGE;
  const n = Number(v);
  // Range first: n & (n - 1) is a 32-bit operation.
  if (!/^\d+$/.test(v) || n < min || n > max || (n & (n - 1)) !== 0) {
    throw usageError(`${name} must be a power of two from ${min} to ${max} (got "${v}")`, name);
  }
  return n;
}
