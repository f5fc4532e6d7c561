/**
 * The pipeline's Prometheus metrics (SPEC §7): one prom-client Registry per
 * run, so tests and several runs in one process never share state.
 *
 * No label ever carries a patient value: labels are dataset, hospital_id
 * (validated by the engine or `__invalid__`), outcome, rule code and stage
 * (and, in the Pushgateway, the grouping label command: ./grouping.ts).
 */
import client from 'prom-client';

export type Outcome = 'accepted' | 'rejected';

/**
 * Stage names used by `run`; `observeStage` accepts any string (the
 * `partition` command records stage="partition").
 */
export const STAGES = [
  'read',
  'parse',
  'rules',
  'transform',
  'sketch',
  'dedupe',
  'parquet_encode',
  'write',
  'stats',
  'report',
] as const;

/** 1 ms … 30 s: a chunk is typically 10 ms – 1 s; the tail catches stalls. */
export const CHUNK_DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

export interface PipelineMetrics {
  readonly registry: client.Registry;
  addRows(dataset: string, hospitalId: string, outcome: Outcome, n: number): void;
  /**
   * Rows rejected by `rule` (a row failing two rules counts for both).
   * `hospitalId` is optional and never becomes a label of the served or
   * written metric (SPEC: `{dataset,rule}`); it only lets `pushMetrics` put
   * each hospital's rejections in that hospital's Pushgateway group. Without
   * it the rejections go with the dataset's first group.
   */
  addRejectedByRule(dataset: string, rule: string, n: number, hospitalId?: string): void;
  addBytesRead(dataset: string, n: number): void;
  /** Records `partition` split into per-hospital files (every record, whatever its hospital_id). */
  addPartitionRows(dataset: string, n: number): void;
  observeChunkDuration(seconds: number): void;
  setPoolQueueSize(n: number): void;
  setPoolUtilization(ratio: number): void;
  /**
   * Adds `seconds` to the stage's total for this run: call once per stage
   * with its wall time, or once per chunk; the gauge holds the sum.
   */
  observeStage(stage: string, seconds: number): void;
  setQualityGate(dataset: string, hospitalId: string, passed: boolean): void;
  setLastSuccess(dataset: string, hospitalId: string, unixSeconds: number): void;
}

/** Key for the per-hospital rejection table; '' = hospital not given. */
type RejectKey = `${string}\u0000${string}\u0000${string}`;

/** State that only the push needs; kept off the public interface. */
export interface MetricsInternals {
  /** (dataset, hospital or '', rule) → rows, mirrors hcp_rejected_rows_total. */
  readonly rejectsByHospital: Map<RejectKey, number>;
  /** Group that carries the run-level series; fixed by the first push. */
  runHome?: { dataset: string; hospitalId: string };
}

const internals = new WeakMap<PipelineMetrics, MetricsInternals>();

/** Internal state of a metrics object made by `createMetrics`, if it is one. */
export function metricsInternals(m: PipelineMetrics): MetricsInternals | undefined {
  return internals.get(m);
}

export function rejectKey(dataset: string, hospitalId: string, rule: string): RejectKey {
  return `${dataset}\u0000${hospitalId}\u0000${rule}`;
}

export function splitRejectKey(key: string): { dataset: string; hospitalId: string; rule: string } {
  const [dataset = '', hospitalId = '', rule = ''] = key.split('\u0000');
  return { dataset, hospitalId, rule };
}

/** Counters only go up: a negative or non-finite count is a bug upstream. */
function checkCount(name: string, n: number): void {
  if (!Number.isFinite(n) || n < 0) {
    throw new RangeError(`${name}: count must be a finite number >= 0, got ${n}`);
  }
}

/**
 * Create the registry and the metrics of SPEC §7.
 * @param opts.collectDefault also collect prom-client's default process
 *   metrics (default true; tests turn it off for exact snapshots).
 */
export function createMetrics(opts: { collectDefault?: boolean } = {}): PipelineMetrics {
  const registry = new client.Registry();
  if (opts.collectDefault ?? true) client.collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const rows = new client.Counter({
    name: 'hcp_rows_total',
    help: 'Rows processed in this run, by dataset, hospital and outcome (accepted = curated, rejected = quarantined).',
    labelNames: ['dataset', 'hospital_id', 'outcome'] as const,
    registers,
  });
  const rejectedByRule = new client.Counter({
    name: 'hcp_rejected_rows_total',
    help: 'Rejected rows by failing rule code; a row failing several rules counts once per rule.',
    labelNames: ['dataset', 'rule'] as const,
    registers,
  });
  const bytesRead = new client.Counter({
    name: 'hcp_bytes_read_total',
    help: 'Input bytes read in this run.',
    labelNames: ['dataset'] as const,
    registers,
  });
  // Not hcp_rows_total: partition passes no rule, and its records are counted again by process.
  const partitionRows = new client.Counter({
    name: 'hcp_partition_rows_total',
    help: 'Records the partition command split into per-hospital files in this run (every record, whatever its hospital_id).',
    labelNames: ['dataset'] as const,
    registers,
  });
  const chunkDuration = new client.Histogram({
    name: 'hcp_chunk_duration_seconds',
    help: 'Time for a worker to process one input chunk.',
    buckets: CHUNK_DURATION_BUCKETS,
    registers,
  });
  const poolQueue = new client.Gauge({
    name: 'hcp_pool_queue_size',
    help: 'Chunks waiting for a worker.',
    registers,
  });
  const poolUtilization = new client.Gauge({
    name: 'hcp_pool_utilization',
    help: 'Share of worker capacity in use (0..1).',
    registers,
  });
  // A gauge, not a histogram: a batch run has one duration per stage, and a
  // pushed histogram would only ever hold this run's few observations. A gauge
  // shows the stage breakdown of the last run directly and
  // avg_over_time(...[30d]) gives the baseline for the slow-run alert.
  const stageDuration = new client.Gauge({
    name: 'hcp_stage_duration_seconds',
    help: 'Seconds spent in each pipeline stage during this run (sum over chunks and workers).',
    labelNames: ['stage'] as const,
    registers,
  });
  const qualityGate = new client.Gauge({
    name: 'hcp_quality_gate_passed',
    help: '1 if the quality gate passed for the dataset and hospital in this run, 0 if it failed.',
    labelNames: ['dataset', 'hospital_id'] as const,
    registers,
  });
  const lastSuccess = new client.Gauge({
    name: 'hcp_last_success_timestamp_seconds',
    help: 'Unix time of the last successful run for the dataset and hospital.',
    labelNames: ['dataset', 'hospital_id'] as const,
    registers,
  });

  const state: MetricsInternals = { rejectsByHospital: new Map() };

  const metrics: PipelineMetrics = {
    registry,
    addRows(dataset, hospitalId, outcome, n) {
      checkCount('addRows', n);
      rows.inc({ dataset, hospital_id: hospitalId, outcome }, n);
    },
    addRejectedByRule(dataset, rule, n, hospitalId) {
      checkCount('addRejectedByRule', n);
      rejectedByRule.inc({ dataset, rule }, n);
      const key = rejectKey(dataset, hospitalId ?? '', rule);
      state.rejectsByHospital.set(key, (state.rejectsByHospital.get(key) ?? 0) + n);
    },
    addBytesRead(dataset, n) {
      checkCount('addBytesRead', n);
      bytesRead.inc({ dataset }, n);
    },
    addPartitionRows(dataset, n) {
      checkCount('addPartitionRows', n);
      partitionRows.inc({ dataset }, n);
    },
    observeChunkDuration(seconds) {
      chunkDuration.observe(seconds);
    },
    setPoolQueueSize(n) {
      poolQueue.set(n);
    },
    setPoolUtilization(ratio) {
      poolUtilization.set(ratio);
    },
    observeStage(stage, seconds) {
      stageDuration.inc({ stage }, seconds);
    },
    setQualityGate(dataset, hospitalId, passed) {
      qualityGate.set({ dataset, hospital_id: hospitalId }, passed ? 1 : 0);
    },
    setLastSuccess(dataset, hospitalId, unixSeconds) {
      lastSuccess.set({ dataset, hospital_id: hospitalId }, unixSeconds);
    },
  };
  internals.set(metrics, state);
  return metrics;
}
