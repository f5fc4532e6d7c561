/**
 * Push the run's metrics to a Prometheus Pushgateway, one group per
 * (dataset, hospital):
 *
 *   PUT <url>/metrics/job/healthcare_pipeline/dataset/<d>/hospital_id/<h>
 *
 * so Airflow's mapped tasks (one hospital each) never overwrite each other and
 * a rerun of a partition replaces its group. Which series go in which group:
 *
 *   series with a hospital_id label      → that hospital's group only (the
 *                                          gateway rejects a hospital_id that
 *                                          differs from the group's)
 *   hcp_rejected_rows_total{dataset,rule} → the hospital's group when the
 *                                          engine passed the hospital to
 *                                          addRejectedByRule, else as below
 *   other series with a dataset label     → the dataset's first group
 *   series with neither (stages, chunks,  → the run's first group: the first
 *   pool, process metrics)                  group of the first push
 *
 * Prometheus then sees every series with the group's dataset and hospital_id,
 * and sums over groups never count a run-level series twice.
 *
 * A PUT replaces the whole group, so a failed run (no
 * hcp_last_success_timestamp_seconds for the group) would erase the previous
 * success time and silence the "no successful run in 35 days" alert. The
 * previous value is therefore read back from the gateway and carried forward.
 *
 * Never throws: a failed push is a warning, the run's outcome does not change.
 */
import type { PipelineMetrics } from './registry.js';
import { metricsInternals, splitRejectKey } from './registry.js';
import type { Family, Sample } from './exposition.js';
import { renderFamilies, TEXT_CONTENT_TYPE } from './exposition.js';

export const PUSH_JOB = 'healthcare_pipeline';
const LAST_SUCCESS = 'hcp_last_success_timestamp_seconds';
const REJECTED_BY_RULE = 'hcp_rejected_rows_total';
const PUSH_TIMEOUT_MS = 10_000;

export interface PushGroups {
  readonly dataset: string;
  readonly hospitalIds: readonly string[];
}

export interface PushResult {
  ok: boolean;
  error?: string;
}

/** One Pushgateway group and the families that belong in it. */
export interface GroupPayload {
  readonly dataset: string;
  readonly hospitalId: string;
  readonly families: Family[];
}

/**
 * A grouping-key path segment. Values that cannot sit in a path segment as is
 * use the gateway's base64url form (`name@base64/…`, `=` for empty).
 */
function groupingSegment(name: string, value: string): string {
  if (value === '') return `${name}@base64/=`;
  if (value.includes('/')) return `${name}@base64/${Buffer.from(value).toString('base64url')}`;
  return `${name}/${encodeURIComponent(value)}`;
}

/** Path of a group below the gateway's base URL. */
export function groupPath(dataset: string, hospitalId: string): string {
  return `/metrics/job/${encodeURIComponent(PUSH_JOB)}/${groupingSegment('dataset', dataset)}/${groupingSegment('hospital_id', hospitalId)}`;
}

interface Scope {
  dataset?: string;
  hospitalId?: string;
}

function scopeOf(labels: Sample['labels']): Scope {
  const d = labels.dataset;
  const h = labels.hospital_id;
  return {
    ...(d === undefined ? {} : { dataset: String(d) }),
    ...(h === undefined ? {} : { hospitalId: String(h) }),
  };
}

/**
 * Split families into Pushgateway groups (pure; see the module comment).
 * @param rejects per (dataset, hospital or '', rule) rejection counts that
 *   replace the registry's hcp_rejected_rows_total samples, when known.
 * @param runHome the group that gets the run-level series.
 */
export function splitIntoGroups(
  families: readonly Family[],
  groups: readonly PushGroups[],
  runHome: { dataset: string; hospitalId: string } | undefined,
  rejects?: ReadonlyMap<string, number>,
): { payloads: GroupPayload[]; unpushed: string[] } {
  const scoped: Array<{ family: Family; samples: Array<{ sample: Sample; scope: Scope }> }> = [];
  for (const family of families) {
    let samples: Array<{ sample: Sample; scope: Scope }>;
    if (family.name === REJECTED_BY_RULE && rejects) {
      samples = [...rejects].map(([key, value]) => {
        const { dataset, hospitalId, rule } = splitRejectKey(key);
        return {
          sample: { labels: { dataset, rule }, value },
          scope: hospitalId === '' ? { dataset } : { dataset, hospitalId },
        };
      });
    } else {
      samples = family.values.map((sample) => ({ sample, scope: scopeOf(sample.labels) }));
    }
    scoped.push({ family, samples });
  }

  const payloads: GroupPayload[] = [];
  const targets = new Set<string>();
  for (const g of groups) {
    const hospitals = [...new Set(g.hospitalIds)];
    hospitals.forEach((hospitalId, i) => {
      targets.add(`${g.dataset}\u0000${hospitalId}`);
      const isDatasetHome = i === 0;
      const isRunHome = runHome?.dataset === g.dataset && runHome.hospitalId === hospitalId;
      const inGroup = ({ dataset, hospitalId: h }: Scope): boolean => {
        if (h !== undefined) return h === hospitalId && (dataset === undefined ? isRunHome : dataset === g.dataset);
        if (dataset !== undefined) return dataset === g.dataset && isDatasetHome;
        return isRunHome;
      };
      const fams: Family[] = [];
      for (const { family, samples } of scoped) {
        const values = samples.filter((s) => inGroup(s.scope)).map((s) => s.sample);
        if (values.length > 0) fams.push({ ...family, values });
      }
      payloads.push({ dataset: g.dataset, hospitalId, families: fams });
    });
  }

  // Hospitals with series but no group in this call: say so, never guess.
  const datasets = new Set(groups.map((g) => g.dataset));
  const unpushed = new Set<string>();
  for (const { samples } of scoped) {
    for (const { scope } of samples) {
      if (scope.hospitalId === undefined || scope.dataset === undefined || !datasets.has(scope.dataset)) continue;
      if (!targets.has(`${scope.dataset}\u0000${scope.hospitalId}`)) unpushed.add(`${scope.dataset}/${scope.hospitalId}`);
    }
  }
  return { payloads, unpushed: [...unpushed].sort() };
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return `${err.message}: ${typeof code === 'string' ? `${code} ` : ''}${cause.message}`;
  }
  return err.message;
}

type LastSuccessLookup = (dataset: string, hospitalId: string) => number | undefined;

/**
 * Read hcp_last_success_timestamp_seconds of every group of our job from the
 * gateway's JSON API (`GET /api/v1/metrics`), to carry it forward.
 */
async function fetchLastSuccess(base: string): Promise<LastSuccessLookup> {
  const res = await fetch(`${base}/api/v1/metrics`, { signal: AbortSignal.timeout(PUSH_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`GET /api/v1/metrics: HTTP ${res.status}`);
  const body = (await res.json()) as { data?: Array<Record<string, unknown>> };
  const found = new Map<string, number>();
  for (const group of body.data ?? []) {
    const labels = group.labels as Record<string, string> | undefined;
    const metric = group[LAST_SUCCESS] as { metrics?: Array<{ value?: string }> } | undefined;
    const value = Number(metric?.metrics?.[0]?.value);
    if (labels?.job !== PUSH_JOB || !Number.isFinite(value)) continue;
    found.set(`${labels.dataset ?? ''}\u0000${labels.hospital_id ?? ''}`, value);
  }
  return (dataset, hospitalId) => found.get(`${dataset}\u0000${hospitalId}`);
}

/**
 * Push the metrics to a Pushgateway, one PUT per (dataset, hospital) group.
 * @param url the gateway's base URL, e.g. `http://127.0.0.1:9091`
 * @param groups the dataset(s) and hospitals of this run; the first hospital
 *   of a dataset also gets the dataset-level series.
 * @param log receives warnings (default: stderr).
 * @returns ok:false with the reasons if any group failed; never throws.
 */
export async function pushMetrics(
  m: PipelineMetrics,
  url: string,
  groups: PushGroups | readonly PushGroups[],
  log: (msg: string) => void = (msg) => process.stderr.write(`${msg}\n`),
): Promise<PushResult> {
  const errors: string[] = [];
  const warn = (msg: string): void => {
    try {
      log(`metrics push: ${msg}`);
    } catch {
      // a broken logger must not break the run either
    }
  };
  try {
    const list: readonly PushGroups[] = Array.isArray(groups) ? groups : [groups as PushGroups];
    const base = new URL(url).href.replace(/\/+$/, '');
    const state = metricsInternals(m);
    const first = list.find((g) => g.hospitalIds.length > 0);
    let runHome = state?.runHome;
    if (!runHome && first) runHome = { dataset: first.dataset, hospitalId: first.hospitalIds[0]! };
    if (state && runHome) state.runHome = runHome;

    const families = (await m.registry.getMetricsAsJSON()) as unknown as Family[];
    const { payloads, unpushed } = splitIntoGroups(families, list, runHome, state?.rejectsByHospital);
    if (unpushed.length > 0) warn(`series of ${unpushed.join(', ')} not pushed: not in the push groups`);
    if (payloads.length === 0) warn('no hospital groups given: nothing pushed');

    let lookup: LastSuccessLookup | undefined;
    for (const [i, p] of payloads.entries()) {
      const path = groupPath(p.dataset, p.hospitalId);
      try {
        const families = [...p.families];
        if (!families.some((f) => f.name === LAST_SUCCESS)) {
          try {
            lookup ??= await fetchLastSuccess(base);
          } catch (err) {
            lookup = () => undefined;
            warn(`cannot read previous ${LAST_SUCCESS} (${describeError(err)}); a failed run will clear it`);
          }
          const previous = lookup(p.dataset, p.hospitalId);
          if (previous !== undefined) {
            families.push({
              name: LAST_SUCCESS,
              help: 'Unix time of the last successful run for the dataset and hospital.',
              type: 'gauge',
              values: [{ labels: { dataset: p.dataset, hospital_id: p.hospitalId }, value: previous }],
            });
          }
        }
        let res: Response;
        try {
          res = await fetch(`${base}${path}`, {
            method: 'PUT',
            headers: { 'Content-Type': TEXT_CONTENT_TYPE },
            body: renderFamilies(families),
            signal: AbortSignal.timeout(PUSH_TIMEOUT_MS),
          });
        } catch (err) {
          // Unreachable gateway: one error is enough, don't wait out every group.
          const skipped = payloads.length - i - 1;
          errors.push(`PUT ${path}: ${describeError(err)}${skipped > 0 ? ` (${skipped} more group(s) not tried)` : ''}`);
          break;
        }
        if (!res.ok) {
          const text = (await res.text().catch(() => '')).trim().slice(0, 300);
          throw new Error(`HTTP ${res.status}${text ? ` ${text}` : ''}`);
        }
        await res.body?.cancel().catch(() => undefined);
      } catch (err) {
        errors.push(`PUT ${path}: ${describeError(err)}`);
      }
    }
  } catch (err) {
    errors.push(describeError(err));
  }
  if (errors.length === 0) return { ok: true };
  const error = errors.join('; ');
  warn(`failed (the run goes on): ${error}`);
  return { ok: false, error };
}
