/**
 * The commands that run the engine: `process` (one file), `stats`, `report`
 * and `run` (every stage for both datasets), with metrics around them.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { need, resolveKey } from '../config.js';
import { partitionLock, preflight, processFile, type ProcessSummary } from '../coordinator.js';
import { committed, onInterrupt, willCommit } from '../lifecycle.js';
import { PipelineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PipelineMetrics, PushGroups } from '../metrics/index.js';
import { createPool } from '../pool.js';
import { ALL_HOSPITALS } from '../rules/fields.js';
import { DATASETS, type Dataset } from '../registry.js';
import type { Lock } from '../sinks/lock.js';
import { pendingCommits, readManifests } from '../sinks/commit.js';
import { makeOutputDir, removeIfEmpty } from '../sinks/fsutil.js';
import { markSuccess, writeRootManifest } from '../sinks/manifest.js';
import { writeReport, type QualityReport } from '../sinks/report.js';
import { staleStats, writeStats } from '../sinks/stats.js';
import { checkMetricsOptions, type PushPlan, withMetrics } from './with-metrics.js';

export interface Outcome {
  exitCode: number;
  summary: Record<string, unknown>;
}

function processConfig(cfg: Config, dataset: Dataset, input: string, key: { key: string; demo: boolean }) {
  return {
    dataset,
    input,
    out: cfg.out,
    chunkSize: cfg.chunkSize,
    maxRecordBytes: cfg.maxRecordBytes,
    rowGroupRows: cfg.rowGroupRows,
    maxBufferedRows: cfg.maxBufferedRows,
    dedupeFilterBits: cfg.dedupeFilterBits,
    asOfDay: cfg.asOfDay,
    period: cfg.period,
    periodBounds: cfg.periodBounds,
    key: key.key,
    keyIsDemo: key.demo,
    progress: cfg.progress,
  };
}

function warnDemoKey(key: { demo: boolean }, log: Logger): void {
  if (key.demo) {
    log.warn('*****************************************************************');
    log.warn('HCP_PSEUDONYM_KEY is not set: patient keys use the built-in DEMO key.');
    log.warn('Anyone can recompute them. Never use this output for real patients.');
    log.warn('*****************************************************************');
  }
}

function stageMetrics(m: PipelineMetrics | null, s: ProcessSummary): void {
  if (m) for (const [stage, ms] of Object.entries(s.timings)) m.observeStage(stage, ms / 1000);
}

function logSummary(s: ProcessSummary, log: Logger): void {
  const rate = s.rows.read / Math.max(s.durationMs / 1000, 1e-3);
  log.info(`${s.dataset}: ${s.rows.read} rows read, ${s.rows.accepted} curated, ${s.rows.rejected} quarantined (${Math.round(rate).toLocaleString('en')} rows/s)`);
  const sec = (ms: number) => (ms / 1000).toFixed(1);
  const p = s.phases;
  const cpu = s.cpu ? `; CPU s: coordinator ${sec(s.cpu.coordinator)}, workers ${sec(s.cpu.workers)}, background ${sec(s.cpu.background)}` : '';
  log.info(`${s.dataset}: wall s: chunks ${sec(p.chunks)}, duplicates ${sec(p.duplicates)}, encode ${sec(p.encode)}, commit ${sec(p.commit)}${cpu}`);
  for (const w of s.warnings) log.warn(w);
}

const processJson = (s: ProcessSummary) => ({
  dataset: s.dataset,
  input: s.input,
  scope: s.scope,
  rows: s.rows,
  hospitals: s.hospitals.map((h) => h.hospital_id),
  hospital_rows: s.hospitals,
  rejects_by_rule: s.rejectsByRule,
  blank_lines: s.blankLines,
  bytes: s.bytes,
  warnings: s.warnings,
  timings_ms: s.timings,
  phases_ms: s.phases,
  ...(s.cpu ? { cpu_ms: s.cpu } : {}),
  duration_ms: s.durationMs,
});

/** The parts of the output an interrupt message names besides the datasets (src/lifecycle.ts). */
const STATISTICS = 'the statistics';
const REPORT = 'the report';

const groupsOf = (summaries: ProcessSummary[]): PushPlan => ({ groups: summaries.map((s) => ({ dataset: s.dataset, hospitalIds: s.hospitals.map((h) => h.hospital_id) })) });

/** A worker failure outside any task (see createPool): worth a warning, not the run. */
const poolWarning = (log: Logger) => (e: unknown) => log.warn(`a worker failed between tasks: ${e instanceof Error ? e.message : String(e)}`);

export async function processCommand(cfg: Config, log: Logger): Promise<Outcome> {
  const dataset = need(cfg.dataset, 'dataset', 'process');
  const input = need(cfg.input, 'input', 'process');
  const key = resolveKey(cfg.requireKey);
  warnDemoKey(key, log);
  const done: ProcessSummary[] = [];
  willCommit(dataset);
  return withMetrics(cfg, log, () => groupsOf(done), async (metrics) => {
    const pool = createPool(cfg.workers, poolWarning(log));
    try {
      const s = await processFile(processConfig(cfg, dataset, input, key), pool, log, metrics);
      done.push(s);
      stageMetrics(metrics, s);
      logSummary(s, log);
      return { exitCode: 0, summary: { command: 'process', status: 'ok', ...processJson(s), out: cfg.out } };
    } finally {
      await pool.destroy();
    }
  });
}

export async function statsCommand(cfg: Config, log: Logger): Promise<Outcome> {
  let datasets: string[] = [];
  // Statistics are dataset-wide and stats counts no hospital's rows: its metrics go to a group of its own
  // (src/metrics/grouping.ts), so pushing them never touches a hospital's numbers nor report's.
  const plan = (): PushPlan => ({
    groups: datasets.map((dataset) => ({ dataset, hospitalIds: [] })),
    ...(datasets.length > 0 && { home: { dataset: datasets[0], hospitalId: ALL_HOSPITALS, command: 'stats' } }),
  });
  checkMetricsOptions(cfg); // before it makes directories under --out
  // Where it writes, once there is something to merge: a directory it cannot write is exit 2, not an internal error.
  if (existsSync(join(cfg.out, '_manifests'))) for (const d of ['_manifests', 'stats']) makeOutputDir(join(cfg.out, d), 'out');
  willCommit(STATISTICS);
  return withMetrics(cfg, log, plan, async (metrics) => {
    const t0 = performance.now();
    const s = writeStats(cfg.out, cfg.minCell);
    if (s.length > 0) committed(STATISTICS);
    const ms = performance.now() - t0;
    metrics?.observeStage('stats', ms / 1000);
    datasets = s.map((x) => x.dataset);
    for (const x of s) log.info(`stats ${x.dataset}: ${x.rows} rows from ${x.hospitals} hospital sketch file(s)`);
    return { exitCode: 0, summary: { command: 'stats', status: 'ok', out: cfg.out, datasets: s, duration_ms: Math.round(ms) } };
  });
}

function finishReport(cfg: Config, log: Logger, metrics: PipelineMetrics | null, extra: Record<string, unknown>): { report: QualityReport; ledger: ReturnType<typeof writeRootManifest>['ledger'] } {
  const report = writeReport(cfg.out, cfg.maxRejectRate);
  const { ledger } = writeRootManifest(cfg.out, report, extra);
  committed(REPORT);
  const byHospital = new Map<string, boolean>();
  for (const g of report.gates) {
    const k = `${g.dataset}\u0000${g.hospital_id}`;
    byHospital.set(k, (byHospital.get(k) ?? true) && g.passed);
  }
  for (const [k, ok] of byHospital) {
    const [d, h] = k.split('\u0000');
    metrics?.setQualityGate(d, h, ok);
  }
  for (const g of report.gates.filter((x) => !x.passed)) log.warn(`quality gate ${g.gate} failed for ${g.dataset} ${g.hospital_id}: ${g.value} > ${g.threshold}`);
  if (ledger.some((l) => !l.holds)) throw new PipelineError('HCP_ERR_LEDGER', 'The ledger does not hold for every input file (see _manifest.json)');
  markSuccess(cfg.out, report.passed);
  // Last success only when the whole run succeeded (_SUCCESS written): a failed ledger (exit 1) or any failed
  // gate (exit 3, another hospital's or the dataset-wide ALL one included) must not look successful.
  // Its time is when the hospital's data was last committed (ALL: the dataset's newest commit), not now: the
  // report also covers hospitals this run did not process (a hospital missing from this month's delivery),
  // and "no successful run in 35 days" must still fire for them.
  if (report.passed) {
    const committed = lastCommits(cfg.out);
    for (const k of byHospital.keys()) {
      const [d, h] = k.split('\u0000');
      const t = committed.get(k);
      if (t !== undefined) metrics?.setLastSuccess(d, h, t);
    }
  }
  log.info(`quality report: ${join(cfg.out, 'quality', 'report.html')} — ${report.passed ? 'all gates passed' : 'a gate FAILED'}`);
  return { report, ledger };
}

/** (dataset, hospital) → Unix seconds of its newest committed scope, and (dataset, ALL) → the dataset's newest. */
function lastCommits(out: string): Map<string, number> {
  const at = new Map<string, number>();
  const later = (k: string, t: number) => at.set(k, Math.max(at.get(k) ?? t, t));
  for (const d of DATASETS) {
    for (const m of readManifests(out, d)) {
      for (const e of Object.values(m.scopes)) {
        const t = Date.parse(e.committed_at) / 1000;
        later(`${d}\u0000${m.hospital_id}`, t);
        later(`${d}\u0000${ALL_HOSPITALS}`, t);
      }
    }
  }
  return at;
}

const gatesJson = (r: QualityReport) => ({ passed: r.passed, failed: r.gates.filter((g) => !g.passed) });

/**
 * `report` declares success only over current statistics (see staleStats): otherwise exit 2, and the
 * `_SUCCESS` of an earlier report goes, as it no longer vouches for this output; nothing else is touched.
 */
function checkStats(out: string): void {
  const stale = staleStats(out);
  if (!stale) return;
  rmSync(join(out, '_SUCCESS'), { force: true });
  throw new PipelineError('HCP_ERR_NO_STATS', stale.message, { file: stale.file });
}

/**
 * No success over a `process` that stopped part-way through its commit (see PendingCommit): exit 2, and the
 * `_SUCCESS` of an earlier report goes; nothing else is touched. Rerunning that process completes it.
 */
function checkCommits(out: string): void {
  const [p] = pendingCommits(out);
  if (!p) return;
  rmSync(join(out, '_SUCCESS'), { force: true });
  throw new PipelineError(
    'HCP_ERR_INTERRUPTED_COMMIT',
    `A process of ${p.input} (${p.dataset}, ${p.scope}) stopped while committing its hospitals (${p.hospitals.join(', ')}): the output mixes its partitions with the previous run's; run it again`,
    { file: p.file },
  );
}

export async function reportCommand(cfg: Config, log: Logger): Promise<Outcome> {
  checkMetricsOptions(cfg); // before it removes _SUCCESS
  if (!existsSync(join(cfg.out, '_manifests'))) throw new PipelineError('HCP_ERR_NO_SKETCHES', `Nothing to report under ${cfg.out}: run process first`, { file: cfg.out });
  // Where it writes (and removes _SUCCESS): a directory it cannot write is exit 2, not an internal error.
  makeOutputDir(cfg.out, 'out');
  try {
    checkCommits(cfg.out);
    checkStats(cfg.out);
  } catch (e) {
    // An output these checks find wrong (an interrupted commit, a damaged manifest) keeps no _SUCCESS vouching for
    // it. Removed only then: a report stopped before its work (a --metrics-port in use, a signal while the metrics
    // load) leaves the output as it was; writeReport removes it as the report's work starts.
    rmSync(join(cfg.out, '_SUCCESS'), { force: true });
    throw e;
  }
  makeOutputDir(join(cfg.out, 'quality'), 'out');
  willCommit(REPORT);
  let hospitals: PushGroups[] = [];
  // Gates and last-success times annotate the hospitals' groups; the stage time (and the process metrics)
  // go to report's own group, so they replace neither stats' nor a process run's (src/metrics/grouping.ts).
  const plan = (): PushPlan => ({
    groups: hospitals,
    ...(hospitals.length > 0 && { home: { dataset: hospitals[0].dataset, hospitalId: ALL_HOSPITALS, command: 'report' } }),
  });
  return withMetrics(cfg, log, plan, async (metrics) => {
    const t0 = performance.now();
    const { report, ledger } = finishReport(cfg, log, metrics, { written_by: 'report' });
    metrics?.observeStage('report', (performance.now() - t0) / 1000);
    const byDataset = new Map<string, string[]>();
    for (const h of report.hospitals) byDataset.set(h.dataset, [...(byDataset.get(h.dataset) ?? []), h.hospital_id]);
    hospitals = [...byDataset].map(([dataset, hospitalIds]) => ({ dataset, hospitalIds }));
    return { exitCode: report.passed ? 0 : 3, summary: { command: 'report', status: report.passed ? 'ok' : 'gate_failed', out: cfg.out, ledger, gates: gatesJson(report), report: join(cfg.out, 'quality', 'report.json') } };
  });
}

export async function runCommand(cfg: Config, log: Logger): Promise<Outcome> {
  const key = resolveKey(cfg.requireKey);
  warnDemoKey(key, log);
  const done: ProcessSummary[] = [];
  willCommit('vitals', 'labs', STATISTICS, REPORT);
  return withMetrics(cfg, log, () => groupsOf(done), async (metrics) => {
    const inputs = [['vitals', cfg.vitals], ['labs', cfg.labs]] as const;
    // Every file-level check (exit 2) before anything is written or deleted (SPEC §1).
    for (const [dataset, input] of inputs) preflight(dataset, input);
    // Both partition locks too, before anything changes: another run holding one is exit 2 with the output as it was.
    const locks: Lock[] = [];
    const unlock = () => {
      for (const l of locks.splice(0)) l.release();
      removeIfEmpty(join(cfg.out, '_locks'));
    };
    const forget = onInterrupt(unlock);
    try {
      for (const [dataset, input] of inputs) locks.push(partitionLock(cfg.out, dataset, cfg.period ?? 'all', input));
    } catch (e) {
      forget();
      unlock();
      throw e;
    }
    // _SUCCESS goes only when the first commit is about to change the output.
    let unmarked = false;
    const beforeCommit = () => {
      if (!unmarked) rmSync(join(cfg.out, '_SUCCESS'), { force: true });
      unmarked = true;
    };
    let pool: ReturnType<typeof createPool> | null = null;
    try {
      pool = createPool(cfg.workers, poolWarning(log));
      for (const [i, [dataset, input]] of inputs.entries()) {
        const s = await processFile({ ...processConfig(cfg, dataset, input, key), beforeCommit, lock: locks[i] }, pool, log, metrics);
        done.push(s);
        stageMetrics(metrics, s);
        logSummary(s, log);
      }
    } finally {
      forget();
      unlock();
      await pool?.destroy();
    }
    const t0 = performance.now();
    const stats = writeStats(cfg.out, cfg.minCell);
    committed(STATISTICS);
    metrics?.observeStage('stats', (performance.now() - t0) / 1000);
    const t1 = performance.now();
    checkCommits(cfg.out);
    const { report, ledger } = finishReport(cfg, log, metrics, { written_by: 'run', demo_key: key.demo });
    metrics?.observeStage('report', (performance.now() - t1) / 1000);
    return {
      exitCode: report.passed ? 0 : 3,
      summary: {
        command: 'run',
        status: report.passed ? 'ok' : 'gate_failed',
        out: cfg.out,
        datasets: Object.fromEntries(done.map((s) => [s.dataset, processJson(s)])),
        ledger,
        stats: stats.map((s) => ({ dataset: s.dataset, rows: s.rows, files: s.files })),
        gates: gatesJson(report),
        demo_key: key.demo,
      },
    };
  });
}
