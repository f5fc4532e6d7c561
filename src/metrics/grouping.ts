/**
 * Which series go in which Pushgateway group (pure). Two kinds of group:
 *
 *   hospital group  /metrics/job/healthcare_pipeline/dataset/<d>/hospital_id/<h>
 *                   owned by the run that counted the hospital's rows
 *                   (`process`, `run`)
 *   command group   /metrics/job/healthcare_pipeline/dataset/<d>/hospital_id/ALL/command/<c>
 *                   owned by a command that counts no hospital's rows
 *                   (`partition`, `stats`, `report`): one per command and
 *                   dataset, so those commands never overwrite each other's
 *                   series nor a process run's (a PUT or POST replaces the
 *                   series of the same name in its group)
 *
 * A run with rows (no command group):
 *
 *   series with a hospital_id label       → that hospital's group only (the
 *                                           gateway rejects a hospital_id that
 *                                           differs from the group's)
 *   hcp_rejected_rows_total{dataset,rule} → the group of the hospital whose
 *                                           rows failed the rule when the engine
 *                                           gave it, else as the next line
 *   other series with a dataset label     → the dataset's first group
 *   series with neither (stages, chunks,  → the run's home group: the first
 *   pool, process metrics)                  group with rows in the run
 *
 * A command without rows (its `home` names the command and its first dataset):
 *
 *   series with a hospital_id label       → that hospital's group, annotated
 *                                           (`report`'s gates and last-success times)
 *   other series with a dataset label     → that dataset's command group
 *   series with neither                   → the home dataset's command group
 *
 * Prometheus then sees every series with its group's dataset and hospital_id
 * (and command), and sums over groups never count a run-level series twice.
 *
 * Hospitals with series but missing from the caller's list (the `ALL` rollup
 * of the report's dataset-level gates) get a group of their own after the
 * listed ones: nothing recorded is dropped.
 *
 * A group for which this run counted rows is owned by it: it is replaced
 * (PUT), so a rerun replaces its partition's numbers. A command group is
 * owned by its command and replaced the same way. A hospital group without
 * rows in this run (the `report` command adding gate results to groups that
 * `process` runs filled, or the `ALL` group of the dataset-level gates) is only
 * annotated (POST: replaces the metric names sent and keeps the others) with
 * its hospital-scoped series; its rows, rejections and stage times stay those
 * of the run that produced them.
 */
import type { Family, Sample } from './exposition.js';
import { splitRejectKey } from './registry.js';

export const PUSH_JOB = 'healthcare_pipeline';
export const ROWS = 'hcp_rows_total';
export const REJECTED_BY_RULE = 'hcp_rejected_rows_total';

export interface PushGroups {
  readonly dataset: string;
  readonly hospitalIds: readonly string[];
}

export interface GroupRef {
  readonly dataset: string;
  readonly hospitalId: string;
  /** Set on a command group (see the module comment); hospital groups have none. */
  readonly command?: string;
}

/** One Pushgateway group, its families, and whether the run owns it. */
export interface GroupPayload extends GroupRef {
  /** PUT (replace the group) when true, POST (annotate) when false. */
  readonly replace: boolean;
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

/** Path of a group below the gateway's base URL (a command group with `command`). */
export function groupPath(dataset: string, hospitalId: string, command?: string): string {
  const path = `/metrics/job/${encodeURIComponent(PUSH_JOB)}/${groupingSegment('dataset', dataset)}/${groupingSegment('hospital_id', hospitalId)}`;
  return command === undefined ? path : `${path}/${groupingSegment('command', command)}`;
}

const key = (dataset: string, hospitalId: string): string => `${dataset}\u0000${hospitalId}`;

/** Normalise the `groups` argument: a list with one entry per dataset, hospitals deduplicated. */
export function normaliseGroups(groups: PushGroups | readonly PushGroups[]): PushGroups[] {
  const list: readonly PushGroups[] = Array.isArray(groups) ? groups : [groups as PushGroups];
  const byDataset = new Map<string, Set<string>>();
  for (const g of list) {
    const set = byDataset.get(g.dataset) ?? new Set<string>();
    for (const h of g.hospitalIds) set.add(h);
    byDataset.set(g.dataset, set);
  }
  return [...byDataset].map(([dataset, hospitals]) => ({ dataset, hospitalIds: [...hospitals] }));
}

/** The (dataset, hospital) pairs for which the families hold row counts. */
export function groupsWithRows(families: readonly Family[]): Set<string> {
  const found = new Set<string>();
  for (const s of families.find((f) => f.name === ROWS)?.values ?? []) {
    if (s.labels.dataset !== undefined && s.labels.hospital_id !== undefined) {
      found.add(key(String(s.labels.dataset), String(s.labels.hospital_id)));
    }
  }
  return found;
}

interface Scope {
  dataset?: string;
  hospitalId?: string;
}

interface ScopedSample {
  readonly sample: Sample;
  readonly scope: Scope;
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
 * Split families into Pushgateway groups (see the module comment).
 * @param home the group that gets the run-level series, when an earlier push
 *   of the same run chose it or the run has no rows of its own; else the first
 *   group with rows is chosen. With a `command`, the command's own groups get
 *   every series without a hospital (command groups, listed first).
 * @param rejects per (dataset, hospital or '', rule) rejection counts that
 *   replace the registry's hcp_rejected_rows_total samples, when known.
 * @returns the payloads (command groups, then listed hospital groups in call
 *   order, then the unlisted ones) and the run's home group, if it has one.
 */
export function splitIntoGroups(
  families: readonly Family[],
  groups: readonly PushGroups[],
  home: GroupRef | undefined,
  rejects?: ReadonlyMap<string, number>,
): { payloads: GroupPayload[]; runHome: GroupRef | undefined } {
  const scoped: Array<{ family: Family; samples: ScopedSample[] }> = families.map((family) => {
    if (family.name === REJECTED_BY_RULE && rejects) {
      const samples = [...rejects].map(([k, value]): ScopedSample => {
        const { dataset, hospitalId, rule } = splitRejectKey(k);
        return {
          sample: { labels: { dataset, rule }, value },
          scope: hospitalId === '' ? { dataset } : { dataset, hospitalId },
        };
      });
      return { family, samples };
    }
    return { family, samples: family.values.map((sample) => ({ sample, scope: scopeOf(sample.labels) })) };
  });
  const withRows = groupsWithRows(families);
  const familiesWhere = (inGroup: (scope: Scope) => boolean): Family[] => {
    const fams: Family[] = [];
    for (const { family, samples } of scoped) {
      const values = samples.filter((s) => inGroup(s.scope)).map((s) => s.sample);
      if (values.length > 0) fams.push({ ...family, values });
    }
    return fams;
  };

  // Listed hospitals first (the first is the dataset's home), then the others
  // that have series in a listed dataset.
  const extra = new Map<string, Set<string>>(groups.map((g) => [g.dataset, new Set<string>()]));
  for (const { samples } of scoped) {
    for (const { scope } of samples) {
      if (scope.hospitalId !== undefined && scope.dataset !== undefined) extra.get(scope.dataset)?.add(scope.hospitalId);
    }
  }
  const complete = groups.map((g) => ({
    dataset: g.dataset,
    hospitalIds: [...g.hospitalIds, ...[...extra.get(g.dataset)!].filter((h) => !g.hospitalIds.includes(h)).sort()],
  }));

  const payloads: GroupPayload[] = [];
  const command = home?.command;
  if (home && command !== undefined) {
    // A command without rows: every series without a hospital goes to its own groups.
    const datasets = [...new Set([home.dataset, ...groups.map((g) => g.dataset)])];
    for (const dataset of datasets) {
      const families = familiesWhere(({ dataset: d, hospitalId: h }) => h === undefined && (d === undefined ? dataset === home.dataset : d === dataset));
      payloads.push({ dataset, hospitalId: home.hospitalId, command, replace: true, families });
    }
  }

  let runHome = home;
  for (const g of runHome ? [] : complete) {
    const h = g.hospitalIds.find((x) => withRows.has(key(g.dataset, x)));
    if (h !== undefined) {
      runHome = { dataset: g.dataset, hospitalId: h };
      break;
    }
  }

  for (const g of complete) {
    g.hospitalIds.forEach((hospitalId, i) => {
      const replace = withRows.has(key(g.dataset, hospitalId));
      const isDatasetHome = i === 0 && command === undefined;
      const isRunHome = command === undefined && runHome?.dataset === g.dataset && runHome.hospitalId === hospitalId;
      const inGroup = ({ dataset, hospitalId: h }: Scope): boolean => {
        if (h !== undefined) return h === hospitalId && (dataset === undefined ? isRunHome : dataset === g.dataset);
        if (dataset !== undefined) return dataset === g.dataset && isDatasetHome;
        return isRunHome;
      };
      payloads.push({ dataset: g.dataset, hospitalId, replace, families: familiesWhere(inGroup) });
    });
  }
  return { payloads, runHome };
}
