/**
 * Write the metrics for node_exporter's textfile collector (`--metrics-file`).
 *
 * Atomic: the text goes to a temporary file in the same directory (not ending
 * in `.prom`, so the collector never reads it half-written), is fsynced, then
 * renamed over the target.
 *
 * Only the hcp_* series are written. The default process metrics describe a
 * process that has exited by the time the file is read, and names such as
 * process_cpu_seconds_total collide with node_exporter's own metrics.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { PipelineMetrics } from './registry.js';
import type { Family } from './exposition.js';
import { renderFamilies } from './exposition.js';

export const PIPELINE_PREFIX = 'hcp_';

/** The registry's hcp_* families as exposition text. */
export async function renderPipelineMetrics(m: PipelineMetrics): Promise<string> {
  const families = (await m.registry.getMetricsAsJSON()) as unknown as Family[];
  return renderFamilies(families.filter((f) => f.name.startsWith(PIPELINE_PREFIX)));
}

/** Atomically write the hcp_* metrics to `path` (tmp file + rename). */
export async function writeMetricsFile(m: PipelineMetrics, path: string): Promise<void> {
  const text = await renderPipelineMetrics(m);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
