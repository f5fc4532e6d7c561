/**
 * Metrics around a command (SPEC §7): served while it runs, pushed and/or
 * written at the end, the same way for every command.
 */
import type { Config } from '../config.js';
import { usageError } from '../errors.js';
import { stillToDo } from '../lifecycle.js';
import type { Logger } from '../log.js';
import type { GroupRef, PipelineMetrics, PushGroups } from '../metrics/index.js';
// Not through ../metrics/index.js, which loads prom-client.
import { checkMetricsFile } from '../metrics/textfile.js';

/** Where a command's metrics go in the Pushgateway (src/metrics/grouping.ts). */
export interface PushPlan {
  groups: PushGroups[];
  /**
   * For a command that counts no hospital's rows (`partition`, `stats`, `report`): its own group, with
   * hospitalId `ALL` and the command's name, for the series without a hospital (stage times…).
   */
  home?: GroupRef;
}

/**
 * The metrics options' checks that can be made before a command does anything: exit 2 for a `--metrics-file`
 * that cannot be written, instead of a warning after the whole run (src/metrics/textfile.ts). `withMetrics` makes
 * them; a command that touches its output before it calls `withMetrics` (`stats`, `report`) makes them first.
 */
export function checkMetricsOptions(cfg: Config): void {
  if (cfg.metricsFile) checkMetricsFile(cfg.metricsFile);
}

/**
 * Runs `body` with metrics: served while running, pushed and/or written at
 * the end. With none of those asked for, `body` gets null and prom-client
 * is not even loaded (~60 ms of every command's start-up).
 * @param push called at the end, when the command knows its datasets and hospitals.
 */
export async function withMetrics<T>(cfg: Config, log: Logger, push: () => PushPlan, body: (m: PipelineMetrics | null) => Promise<T>): Promise<T> {
  if (cfg.metricsPort === null && !cfg.pushgateway && !cfg.metricsFile) return body(null);
  checkMetricsOptions(cfg);
  const { createMetrics, pushMetrics, serveMetrics, writeMetricsFile } = await import('../metrics/index.js');
  const metrics = createMetrics();
  // A port already in use (or not ours to bind) is the user's to change: exit 2 naming it, before anything is done.
  const server =
    cfg.metricsPort !== null
      ? await serveMetrics(metrics, cfg.metricsPort).catch((e: Error) => {
          throw usageError(`--metrics-port ${cfg.metricsPort}: cannot serve metrics on 127.0.0.1: ${e.message}`, 'metrics-port');
        })
      : null;
  if (server) log.info(`metrics on http://127.0.0.1:${server.port}/metrics`);
  // An interrupt after the command committed its output says these are still to do (src/lifecycle.ts).
  const pushed = cfg.pushgateway ? stillToDo('metrics not pushed') : null;
  const written = cfg.metricsFile ? stillToDo('metrics file not written') : null;
  try {
    return await body(metrics);
  } finally {
    if (cfg.pushgateway) {
      const { groups, home } = push();
      // A failed push (or one out of time: PUSH_DEADLINE_MS) is one warning, pushMetrics' own (the URL redacted): nothing to add.
      await pushMetrics(metrics, cfg.pushgateway, groups, (m) => log.warn(m), home);
      pushed?.();
    }
    if (cfg.metricsFile) await writeMetricsFile(metrics, cfg.metricsFile).catch((e) => log.warn(`metrics file not written: ${(e as Error).message}`));
    written?.();
    await server?.close();
  }
}
