/**
 * Shared test helpers: run the built CLI, temporary directories, an
 * error-code assertion, a DuckDB connection for reference queries, and a
 * few small readers (RFC 4180 via fast-csv, rank-error checks).
 *
 * The CLI tests run `node dist/src/cli.js`: build first (`npx tsc -p tsconfig.json`).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parseString } from 'fast-csv';
import { expect } from 'vitest';
import type { ProcessConfig } from '../src/coordinator.js';
import { Dictionaries, resolve } from '../src/merge/dicts.js';
import { parseIsoDate } from '../src/rules/fields.js';
import { unpackRejects } from '../src/sinks/quarantine.js';
import { ChunkProcessor } from '../src/transform/chunk.js';
import { wordsToHex } from '../src/transform/sha256.js';
import { type ChunkContext, type ChunkResult, PATIENT_WORDS } from '../src/types.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The built CLI; HCP_CLI points the tests at another build (e.g. a private outDir while dist/ is being rebuilt). */
export const CLI = process.env.HCP_CLI ?? join(ROOT, 'dist', 'src', 'cli.js');
export const DATA = join(ROOT, 'data');
/** The key every CLI test runs with unless it says otherwise. */
export const TEST_KEY = 'test-key-0123456789';

/**
 * A `processFile` configuration for the tests that call it in-process: vitals, 1 MiB chunks, the engine's default
 * bounds, `--as-of 2025-01-01` and the test key; `over` changes any of it.
 */
export function processConfig(input: string, out: string, over: Partial<ProcessConfig> = {}): ProcessConfig {
  return {
    dataset: 'vitals',
    input,
    out,
    chunkSize: 1 << 20,
    maxRecordBytes: 1 << 20,
    rowGroupRows: 128_000,
    maxBufferedRows: 400_000,
    dedupeFilterBits: null,
    asOfDay: parseIsoDate('2025-01-01'),
    period: null,
    periodBounds: null,
    key: TEST_KEY,
    keyIsDemo: false,
    progress: false,
    ...over,
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The last non-empty stdout line parsed as JSON (null when it is not JSON). */
  json: Record<string, any> | null;
  ms: number;
}

export interface CliOptions {
  /** Environment overrides; a value of `undefined` removes the variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
}

/** Throws a helpful message when the CLI has not been built. */
export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" before these tests`);
}

/** Runs `node dist/src/cli.js ...args`, with HCP_PSEUDONYM_KEY set to TEST_KEY unless overridden. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  assertBuilt();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, HCP_PSEUDONYM_KEY: TEST_KEY, NO_COLOR: '1', ...opts.env })) {
    if (v !== undefined) env[k] = v;
  }
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({ code, signal, stdout, stderr, json: lastJsonLine(stdout), ms: performance.now() - started });
    });
  });
}

/** The last non-empty line of `text` parsed as JSON, or null. */
export function lastJsonLine(text: string): Record<string, any> | null {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return null;
  try {
    const v = JSON.parse(lines[lines.length - 1]);
    return typeof v === 'object' && v !== null ? v : null;
  } catch {
    return null;
  }
}

/** Formats a CLI result for assertion messages. */
export const describeRun = (r: CliResult) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stderr ---\n${r.stderr.slice(-4000)}\n--- stdout ---\n${r.stdout.slice(-4000)}`;

// ------------------------------------------------------------------ temp dirs

const made: string[] = [];

/** A fresh temporary directory, removed by `removeTempDirs()` (kept when HCP_KEEP_TMP is set). */
export function tempDir(prefix = 'hcp-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export function removeTempDirs(): void {
  if (process.env.HCP_KEEP_TMP) return;
  while (made.length > 0) rmSync(made.pop()!, { recursive: true, force: true });
}

/** Every file under `dir` (relative path → sha256): the output byte for byte, manifests and all. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** Every file under `dir` (recursively), as paths relative to `dir`, sorted. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

export const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

// ------------------------------------------------------------------ errors

/**
 * Asserts that `fn` throws (or rejects with) an error whose `code` is `code`;
 * match on the code, never on the class. Returns the error.
 */
export async function expectErrorCode(fn: () => unknown, code: string): Promise<Error & { code: string }> {
  try {
    await fn();
  } catch (e) {
    return checkCode(e, code);
  }
  return checkCode(NOTHING_THROWN, code);
}

/** Synchronous variant of expectErrorCode, for pure functions. */
export function expectErrorCodeSync(fn: () => unknown, code: string): Error & { code: string } {
  try {
    fn();
  } catch (e) {
    return checkCode(e, code);
  }
  return checkCode(NOTHING_THROWN, code);
}

const NOTHING_THROWN = Symbol('nothing thrown');

function checkCode(caught: unknown, code: string): Error & { code: string } {
  expect(caught !== NOTHING_THROWN, `expected an error with code ${code}, but nothing was thrown`).toBe(true);
  expect((caught as { code?: unknown })?.code, `error: ${(caught as Error)?.message}`).toBe(code);
  return caught as Error & { code: string };
}

// ------------------------------------------------------------------ DuckDB

let duck: Promise<DuckDBConnection> | null = null;

/** One in-memory DuckDB connection per test file. */
export function duckdb(): Promise<DuckDBConnection> {
  duck ??= DuckDBInstance.create(':memory:').then((i) => i.connect());
  return duck;
}

/** Runs SQL and returns rows as plain JS objects; BIGINTs become numbers, DATEs `YYYY-MM-DD` strings. */
export async function query<T = Record<string, any>>(sql: string): Promise<T[]> {
  const c = await duckdb();
  const r = await c.runAndReadAll(sql);
  const names = r.columnNames();
  const types = r.columnTypes().map((t) => t.toString());
  return r.getRowObjectsJS().map((row) => {
    const o: Record<string, unknown> = {};
    names.forEach((n, i) => {
      const v = (row as Record<string, unknown>)[n];
      if (typeof v === 'bigint') o[n] = Number(v);
      else if (v instanceof Date && types[i] === 'DATE') o[n] = v.toISOString().slice(0, 10);
      else o[n] = v;
    });
    return o as T;
  });
}

/** SQL string literal. */
export const sqlStr = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** `read_parquet` over every curated part file of a dataset (no hive columns added). */
export const curatedScan = (out: string, dataset: string) =>
  `read_parquet(${sqlStr(join(out, 'curated', dataset, '*', '*', '*.parquet'))}, hive_partitioning = false, filename = true)`;

/** `read_csv` of a CSV with every column as VARCHAR (quarantine, stats). */
export const csvScan = (path: string) => `read_csv(${sqlStr(path)}, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"')`;

// ------------------------------------------------------------------ CSV

/** Parses CSV text with fast-csv (an independent RFC 4180 parser); blank lines are dropped. */
export function fastCsv(text: string): Promise<string[][]> {
  return new Promise((resolve, reject) => {
    const rows: string[][] = [];
    parseString(text, { headers: false })
      .on('data', (r: string[]) => {
        if (r.length > 0) rows.push(r);
      })
      .on('error', reject)
      .on('end', () => resolve(rows));
  });
}

/** Reads a CSV file with a header into objects (fast-csv). */
export async function readCsvObjects(path: string): Promise<Record<string, string>[]> {
  const [head, ...rows] = await fastCsv(readFileSync(path, 'utf8'));
  return rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i] ?? ''])));
}

/** Every rejects*.csv of a dataset's quarantine, parsed, with the hospital partition it sits in. */
export async function readQuarantine(out: string, dataset: string): Promise<(Record<string, string> & { partition: string })[]> {
  const root = join(out, 'quarantine', dataset);
  const rows: (Record<string, string> & { partition: string })[] = [];
  for (const f of listFiles(root).filter((p) => /rejects[^/]*\.csv$/.test(p))) {
    const partition = f.split('/')[0].replace(/^hospital_id=/, '');
    for (const r of await readCsvObjects(join(root, f))) rows.push({ ...r, partition });
  }
  return rows;
}

// ------------------------------------------------------------------ statistics

/** SPEC §4 rank tolerance. */
export const RANK_TOL = 0.005;

/** Checks the SPEC §4 rank condition for q̂ over sorted values; returns a message when it fails, else null. */
export function rankError(sorted: ArrayLike<number>, q: number, p: number, tol = RANK_TOL): string | null {
  const n = sorted.length;
  let lt = 0;
  let le = 0;
  // Binary searches: first index >= q, first index > q.
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (sorted[m] < q) lo = m + 1;
    else hi = m;
  }
  lt = lo;
  lo = 0;
  hi = n;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (sorted[m] <= q) lo = m + 1;
    else hi = m;
  }
  le = lo;
  const eps = 1e-12;
  if (lt / n > p + tol + eps || le / n < p - tol - eps) return `p=${p} q=${q}: count(v<q)/n=${lt / n}, count(v<=q)/n=${le / n} (n=${n})`;
  return null;
}

/** The values the public statistics export may blank: every number but n_patients. */
export const PUBLIC_BLANKABLE = ['n', 'mean', 'stddev', 'min', 'max', 'p05', 'p25', 'p50', 'p75', 'p95', 'p99', 'n_low', 'n_high'];
const ADDITIVE = ['n', 'mean', 'stddev', 'n_low', 'n_high'];
const SINGLE_VALUES = ['min', 'max', 'p05', 'p25', 'p50', 'p75', 'p95', 'p99'];

/**
 * Checks a public statistics export against the full statistics it was made from (CSV records, same rows in the
 * same order): visible values are the full ones and n_patients is always there; a cell with fewer than `minCell`
 * patients is blank; a hospital cell is blank or shown whole; and in each (dataset, month, measure) nothing
 * blanked can be recovered as ALL minus the visible cells: the blanked hospital cells hold at least `minCell`
 * patients together or ALL's sums are blank, and ALL's min/max, wherever they show in its row, are a visible
 * cell's. Returns how many hospital cells are blank and shown.
 */
export function expectSafePublicStats(full: Record<string, string>[], pub: Record<string, string>[], minCell: number): { blank: number; shown: number } {
  expect(pub.length).toBe(full.length);
  const groups = new Map<string, { all?: number; cells: number[] }>();
  full.forEach((f, i) => {
    const p = pub[i];
    expect(Object.keys(p)).toEqual(Object.keys(f));
    for (const c of Object.keys(f)) if (!PUBLIC_BLANKABLE.includes(c) || p[c] !== '') expect(p[c], `${f.hospital_id} ${f.month} ${f.measure} ${c}`).toBe(f[c]);
    if (Number(f.n_patients) < minCell) for (const c of PUBLIC_BLANKABLE) expect(p[c], `${f.hospital_id} ${f.month} ${f.measure} ${c}`).toBe('');
    const k = `${f.dataset}\u0000${f.month}\u0000${f.measure}`;
    const g = groups.get(k) ?? { cells: [] };
    groups.set(k, g);
    if (f.hospital_id === 'ALL') g.all = i;
    else g.cells.push(i);
  });
  let blank = 0;
  let shown = 0;
  for (const [k, { all, cells }] of groups) {
    const hidden = cells.filter((i) => pub[i].n === '');
    const visible = cells.filter((i) => pub[i].n !== '');
    for (const i of hidden) for (const c of PUBLIC_BLANKABLE) expect(pub[i][c], `${k} ${full[i].hospital_id} ${c}`).toBe('');
    blank += hidden.length;
    shown += visible.length;
    if (all === undefined || hidden.length === 0) continue;
    const residual = hidden.reduce((a, i) => a + Number(pub[i].n_patients), 0);
    for (const c of ADDITIVE) if (pub[all][c] !== '') expect(residual, `${k}: ALL ${c} minus the visible cells`).toBeGreaterThanOrEqual(minCell);
    for (const ext of ['min', 'max']) {
      const v = full[all][ext];
      if (SINGLE_VALUES.some((c) => pub[all][c] === v)) expect(visible.some((i) => pub[i][ext] === v), `${k}: ALL ${ext} ${v}`).toBe(true);
    }
  }
  return { blank, shown };
}

/**
 * The exact mean and sample stddev of doubles (SPEC §4's reference for 1e-9): every value is an integer times a
 * power of two, so the sums are exact BigInts; only the final division and square root round (~1 ulp each).
 */
export function exactMoments(xs: ArrayLike<number>): { n: number; mean: number | null; stddev: number | null } {
  const n = xs.length;
  if (n === 0) return { n, mean: null, stddev: null };
  const view = new DataView(new ArrayBuffer(8));
  const parts: [bigint, number][] = Array.from(xs, (x) => {
    view.setFloat64(0, x);
    const hi = view.getUint32(0);
    const biased = (hi >>> 20) & 0x7ff;
    let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(view.getUint32(4));
    if (biased !== 0) m |= 1n << 52n;
    return [hi >>> 31 ? -m : m, biased === 0 ? -1074 : biased - 1075];
  });
  const e = Math.min(...parts.map((p) => p[1]));
  let s1 = 0n;
  let s2 = 0n;
  for (const [m, k] of parts) {
    const x = m << BigInt(k - e);
    s1 += x;
    s2 += x * x;
  }
  // a/b as a double, for BigInts with |a/b| well inside the double range once scaled by 2^128.
  const div = (a: bigint, b: bigint) => Number((a << 128n) / b) * 2 ** -128;
  const N = BigInt(n);
  const mean = div(s1, N) * 2 ** e;
  const stddev = n < 2 ? null : Math.sqrt(div(N * s2 - s1 * s1, N * (N - 1n))) * 2 ** e;
  return { n, mean, stddev };
}

/** |a − b| ≤ rel·max(|a|,|b|) + abs. */
export function close(a: number, b: number, rel = 1e-9, abs = 0): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + abs;
}

/** A small deterministic PRNG (mulberry32) for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A small independent RFC 4180 reader that also reports the 1-based
 * physical line each record starts on (header = line 1). Blank lines are
 * skipped; a trailing CR before LF is dropped.
 */
export function csvRecords(text: string): { line: number; fields: string[] }[] {
  const out: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let inQuotes = false;
  let line = 1;
  let start = 1;
  let empty = true;
  const endRecord = () => {
    const last = quoted ? field : field.replace(/\r$/, '');
    if (!(empty && fields.length === 0 && last === '' && !quoted)) {
      fields.push(last);
      out.push({ line: start, fields });
    }
    fields = [];
    field = '';
    quoted = false;
    empty = true;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"') {
      inQuotes = true;
      quoted = true;
      empty = false;
    } else if (c === ',') {
      fields.push(quoted ? field : field.replace(/\r$/, ''));
      field = '';
      quoted = false;
      empty = false;
    } else if (c === '\n') {
      endRecord();
      line++;
      start = line;
    } else {
      if (c !== '\r') empty = false;
      field += c;
    }
  }
  if (!empty || field !== '' || fields.length > 0) endRecord();
  return out;
}

/** One accepted row of a chunk, with its dictionary references resolved. */
export interface ChunkRow {
  hospital: string;
  month: number;
  day: number;
  measure: number;
  flag: number;
  value: number;
  refLow: number;
  refHigh: number;
  patientKey: string;
  sourceValue: string;
  sourceUnit: string;
  fp: [number, number];
  start: number;
  line: number;
}

/**
 * Runs chunks through a fresh worker core (empty shared dictionaries, as at
 * the start of a file) and resolves each accepted row's references, in
 * partition order as the chunk result lists them.
 */
/** A chunk's rejects, column by column (unpacked). */
export interface RejectColumns {
  line: number[];
  codes: string[];
  hospital: string[];
  cells: string[];
  /** Per hospital: its rejected rows' non-empty required cells (`Rejects.filled`). */
  filled: Record<string, number[]>;
}

export function runChunks(ctx: ChunkContext, chunks: Uint8Array[]): (Omit<ChunkResult, 'rejects'> & { rejects: RejectColumns; accepted: ChunkRow[] })[] {
  const proc = new ChunkProcessor(ctx);
  const dicts = new Dictionaries(1024);
  return chunks.map((bytes, seq) => {
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    const r = proc.run(copy, seq, dicts.state);
    const ids = { patients: dicts.publishPatients(r.newPatients), values: dicts.publishValues(r.newValues) };
    const accepted: ChunkRow[] = [];
    for (let p = 0; p < r.parts.length; p++) {
      for (let i = r.partStart[p]; i < r.partStart[p + 1]; i++) {
        const pid = resolve(r.patient[i], ids.patients);
        const vid = resolve(r.srcValue[i], ids.values);
        const c = r.code[i];
        accepted.push({
          hospital: r.parts[p].hospital,
          month: r.parts[p].month,
          day: r.day[i],
          measure: c & 0xff,
          flag: (c >>> 8) & 0xff,
          value: r.value[i],
          refLow: r.ref.length ? r.ref[2 * i] : NaN,
          refHigh: r.ref.length ? r.ref[2 * i + 1] : NaN,
          patientKey: wordsToHex(dicts.patients.payload, pid * PATIENT_WORDS + 1, 4),
          sourceValue: dicts.values.keyString(vid),
          sourceUnit: r.units[c >>> 16],
          fp: [r.fp[2 * i], r.fp[2 * i + 1]],
          start: r.pos[2 * i],
          line: r.pos[2 * i + 1],
        });
      }
    }
    const rows = unpackRejects(r.rejects);
    const rejects: RejectColumns = {
      line: rows.map((x) => x.line),
      codes: rows.map((x) => x.codes),
      hospital: rows.map((x) => x.hospital),
      cells: rows.map((x) => x.cells),
      filled: Object.fromEntries(r.rejects.hospitals.map((h, k) => [h, r.rejects.filled[k]])),
    };
    return { ...r, rejects, accepted };
  });
}
