/**
 * Push the run's metrics to a Prometheus Pushgateway: one request per
 * (dataset, hospital) group, so Airflow's mapped tasks (one hospital each)
 * never overwrite each other, and one per (dataset, command) group for the
 * commands that count no hospital's rows (`partition`, `stats`, `report`), so
 * they never overwrite each other either. Which series go where, and when a
 * group is replaced (PUT) or annotated (POST): ./grouping.ts.
 *
 * A PUT replaces the whole group, so a failed run (no
 * hcp_last_success_timestamp_seconds for the group) would erase the previous
 * success time and silence the "no successful run in 35 days" alert: the
 * previous value is read back from the gateway and carried forward.
 *
 * Never throws: a failed push is a warning, the run's outcome does not change.
 * The warning is one line, whatever went wrong: a gateway (or a proxy before
 * it) answering with an HTML error page had the whole page dumped into the
 * log, once per group; and a gateway that was down gave two lines, the
 * last-success read's and the push's. The first ERRORS_LISTED failed groups
 * are listed, the others counted; the deadline and a failed last-success read
 * are said after them, never counted among them (the read only when a group
 * was pushed without the time, which it then lost).
 * Nor does any message carry credentials: a URL with them (or with a query or
 * fragment, which would swallow the group's path) is refused before any request.
 * Nor does it hold the run up for long: each request has 10 s, and all of a
 * command's requests together have PUSH_DEADLINE_MS (15 s). A gateway that
 * answers slowly or not at all would otherwise keep a run that has committed
 * its output going for minutes (14 groups of 3 s each took 42 s), inside
 * Airflow's task timeout, whose SIGTERM then reports the run interrupted.
 */
import type { Family } from './exposition.js';
import { renderFamilies, TEXT_CONTENT_TYPE } from './exposition.js';
import type { GroupRef, PushGroups } from './grouping.js';
import { groupPath, normaliseGroups, PUSH_JOB, splitIntoGroups } from './grouping.js';
import type { PipelineMetrics } from './registry.js';
import { metricsInternals } from './registry.js';
import { pushgatewayUrlProblem, redactUrl } from './url.js';

const LAST_SUCCESS = 'hcp_last_success_timestamp_seconds';
const LAST_SUCCESS_HELP = 'Unix time of the last successful run for the dataset and hospital.';
const PUSH_TIMEOUT_MS = 10_000;
/** Characters of a failed request's response body quoted in the warning. */
const BODY_CHARS = 200;
/** Failed groups listed one by one in the warning; the rest are counted. */
const ERRORS_LISTED = 3;
/** All the requests of one push together (README, monitoring/README.md): then the groups left are not pushed. */
export const PUSH_DEADLINE_MS = 15_000;

export interface PushResult {
  ok: boolean;
  error?: string;
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

/** One line: white space (newlines included) collapsed. */
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** The start of a response body for a message: one line, at most BODY_CHARS characters. */
function bodySnippet(text: string): string {
  const flat = oneLine(text);
  if (flat.length <= BODY_CHARS) return flat;
  // Not half of a surrogate pair.
  const end = /[\ud800-\udbff]/.test(flat[BODY_CHARS - 1]) ? BODY_CHARS - 1 : BODY_CHARS;
  return `${flat.slice(0, end)}…`;
}

type LastSuccessLookup = (dataset: string, hospitalId: string) => number | undefined;

/**
 * hcp_last_success_timestamp_seconds of every group of our job, from the
 * gateway's JSON API (`GET /api/v1/metrics`).
 */
async function fetchLastSuccess(base: string, signal: AbortSignal): Promise<LastSuccessLookup> {
  const res = await fetch(`${base}/api/v1/metrics`, { signal });
  if (!res.ok) throw new Error(`GET /api/v1/metrics: HTTP ${res.status}`);
  const body = (await res.json()) as { data?: Array<Record<string, unknown>> };
  const found = new Map<string, number>();
  for (const group of body.data ?? []) {
    const labels = group.labels as Record<string, string> | undefined;
    const metric = group[LAST_SUCCESS] as { metrics?: Array<{ value?: string }> } | undefined;
    const value = Number(metric?.metrics?.[0]?.value);
    if (labels?.job !== PUSH_JOB || labels.command !== undefined || !Number.isFinite(value)) continue;
    found.set(`${labels.dataset ?? ''}\u0000${labels.hospital_id ?? ''}`, value);
  }
  return (dataset, hospitalId) => found.get(`${dataset}\u0000${hospitalId}`);
}

/**
 * Push the metrics to a Pushgateway, one request per (dataset, hospital) group.
 * @param url the gateway's base URL, e.g. `http://127.0.0.1:9091`
 * @param groups the dataset(s) and hospitals of this run (one object or a list;
 *   several calls on one metrics object are fine: run-level series are pushed
 *   once, with the first group that has rows).
 * @param log receives warnings (default: stderr).
 * @param home where the run-level series go in a run without rows of its own,
 *   which would otherwise push them nowhere: with a `command` (`partition`,
 *   `stats`, `report`), that command's own groups (./grouping.ts).
 * @param deadlineMs how long all the requests may take together; the groups not pushed by then are left.
 * @returns ok:false with the reasons if any group failed; never throws.
 */
export async function pushMetrics(
  m: PipelineMetrics,
  url: string,
  groups: PushGroups | readonly PushGroups[],
  log: (msg: string) => void = (msg) => process.stderr.write(`${msg}\n`),
  home?: GroupRef,
  deadlineMs = PUSH_DEADLINE_MS,
): Promise<PushResult> {
  const errors: string[] = [];
  /** Said at the end of the warning, after the groups' errors and whatever their number. */
  let lateNote: string | undefined;
  /** Why the last-success times could not be read, and how many groups were replaced without theirs. */
  let readError: string | undefined;
  let cleared = 0;
  const deadline = AbortSignal.timeout(deadlineMs);
  /** Each request's signal: its own timeout or the push's deadline, whichever comes first. */
  const signal = () => AbortSignal.any([deadline, AbortSignal.timeout(PUSH_TIMEOUT_MS)]);
  const late = (left: number) => `gave up after ${deadlineMs / 1000} s (the push deadline): ${left} group(s) not pushed`;
  const say = (msg: string): void => {
    try {
      log(oneLine(msg));
    } catch {
      // a broken logger must not break the run either
    }
  };
  const warn = (msg: string): void => say(`metrics push: ${msg}`);
  // Whether a response body was quoted already: one is enough (every group gets the same error page).
  let quoted = false;
  try {
    const problem = pushgatewayUrlProblem(url);
    if (problem) throw new Error(`the Pushgateway URL ${problem}`);
    const list = normaliseGroups(groups);
    const base = new URL(url).href.replace(/\/+$/, '');
    const families = (await m.registry.getMetricsAsJSON()) as unknown as Family[];
    const state = metricsInternals(m);
    const { payloads, runHome } = splitIntoGroups(families, list, state?.runHome ?? home, state?.rejectsByHospital);
    if (state && runHome) state.runHome = runHome; // later pushes of this run leave run-level series there
    if (payloads.length === 0) warn('no hospital groups given: nothing pushed');

    let lookup: LastSuccessLookup | undefined;
    for (const [i, p] of payloads.entries()) {
      if (deadline.aborted) {
        lateNote = late(payloads.length - i);
        break;
      }
      const path = groupPath(p.dataset, p.hospitalId, p.command);
      const method = p.replace ? 'PUT' : 'POST';
      const fams = [...p.families];
      // Nothing to add to that group; a command's group of a dataset it recorded nothing for is left alone.
      if ((!p.replace || p.command !== undefined) && fams.length === 0) continue;
      // Only hospital groups hold a last-success time (report's, which a process PUT would erase).
      const carries = p.replace && p.command === undefined && !fams.some((f) => f.name === LAST_SUCCESS);
      if (carries) {
        try {
          lookup ??= await fetchLastSuccess(base, signal());
        } catch (err) {
          if (deadline.aborted) {
            lateNote = late(payloads.length - i);
            break;
          }
          lookup = () => undefined;
          readError = describeError(err);
        }
        const previous = lookup(p.dataset, p.hospitalId);
        if (previous !== undefined) {
          fams.push({
            name: LAST_SUCCESS,
            help: LAST_SUCCESS_HELP,
            type: 'gauge',
            values: [{ labels: { dataset: p.dataset, hospital_id: p.hospitalId }, value: previous }],
          });
        }
      }
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: { 'Content-Type': TEXT_CONTENT_TYPE },
          body: renderFamilies(fams),
          signal: signal(),
        });
      } catch (err) {
        if (deadline.aborted) {
          lateNote = late(payloads.length - i);
          break;
        }
        // Unreachable gateway: one error is enough, don't wait out every group.
        const skipped = payloads.length - i - 1;
        errors.push(`${method} ${path}: ${describeError(err)}${skipped > 0 ? ` (${skipped} more group(s) not tried)` : ''}`);
        break;
      }
      const text = await res.text().catch(() => '');
      if (res.ok) {
        if (carries && readError !== undefined) cleared++;
        continue;
      }
      const quote: string = quoted ? '' : bodySnippet(text);
      quoted ||= quote !== '';
      errors.push(`${method} ${path}: HTTP ${res.status}${quote ? ` ${quote}` : ''}`);
    }
  } catch (err) {
    errors.push(describeError(err));
  }
  const readNote = cleared > 0 ? `cannot read the previous ${LAST_SUCCESS} (${readError}): cleared in ${cleared} group(s) pushed` : undefined;
  if (errors.length === 0 && lateNote === undefined) {
    // Every group pushed, without the previous last-success time.
    if (readNote) warn(readNote);
    return { ok: true };
  }
  const more = errors.length - ERRORS_LISTED;
  const parts = [...errors.slice(0, ERRORS_LISTED), ...(more > 0 ? [`and ${more} more group(s) failed`] : []), lateNote, readNote];
  const error = oneLine(parts.filter((p) => p !== undefined).join('; '));
  say(`metrics push to ${redactUrl(url)} failed (the run goes on): ${error}`);
  return { ok: false, error };
}
