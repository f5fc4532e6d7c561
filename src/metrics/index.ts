export type { Outcome, PipelineMetrics } from './registry.js';
export { createMetrics, STAGES, CHUNK_DURATION_BUCKETS } from './registry.js';
export type { MetricsServer } from './serve.js';
export { serveMetrics } from './serve.js';
export type { GroupRef, PushGroups } from './grouping.js';
export { groupPath, PUSH_JOB } from './grouping.js';
export type { PushResult } from './push.js';
export { pushMetrics } from './push.js';
export { checkMetricsFile, writeMetricsFile } from './textfile.js';
