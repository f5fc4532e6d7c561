/**
 * The quality report (SPEC §2 report-level checks, §5 outputs): per dataset
 * and hospital the ledger, reject rate and rejections by rule, column
 * completeness, defaulted reference ranges, systolic ≤ diastolic pairs, row
 * count vs the previous run, and each measure's shift vs the previous month.
 * Gates (ledger, reject rate) decide the exit code (3 when one fails).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DATASETS, type Dataset } from '../registry.js';
import { RULES } from '../rules/codes.js';
import { ALL_HOSPITALS, INVALID_HOSPITAL } from '../rules/fields.js';
import { type HospitalManifest, type InputManifest, readManifests, type ScopeEntry, sourceOf } from './commit.js';
import { readJsonFiles, writeFileAtomic, writeJsonAtomic } from './fsutil.js';
import { computeStats, readSketches, type StatRow } from './stats.js';
import { InputManifestShape } from './schemas.js';

export interface Gate {
  dataset: Dataset;
  hospital_id: string;
  gate: 'ledger' | 'reject_rate';
  value: number;
  threshold: number;
  passed: boolean;
}

export interface HospitalReport {
  dataset: Dataset;
  hospital_id: string;
  scopes: string[];
  rows: { read: number; accepted: number; rejected: number };
  reject_rate: number;
  rejects_by_rule: Record<string, number>;
  completeness: Record<string, number | null>;
  defaulted_reference_ranges: number;
  bp_pairs: number;
  bp_systolic_not_above_diastolic: number;
  /** Rows read by the previous run of each scope that had one (null: none had); `row_count_change` compares those scopes' rows now with it. */
  previous_rows_read: number | null;
  row_count_change: number | null;
  demo_key: boolean;
  warnings: string[];
}

export interface Shift {
  dataset: Dataset;
  hospital_id: string;
  measure: string;
  month: string;
  previous_month: string;
  median_shift_iqr: number;
  flagged: boolean;
}

export interface QualityReport {
  generated_at: string;
  /**
   * Every input file whose run produced a current partition, or that had no hospital at all, with its ledger and
   * file-level warnings (empty file, header only, extra columns). `superseded_hospitals`: its hospitals whose
   * partition a later run (of another path, or another version of the file) replaced.
   */
  inputs: (InputManifest & { dataset: Dataset; superseded_hospitals: string[] })[];
  max_reject_rate: number;
  passed: boolean;
  gates: Gate[];
  hospitals: HospitalReport[];
  distribution_shifts: Shift[];
  rule_catalogue: Record<string, string>;
}

/** Shift threshold: the median moved by more than half an IQR of the previous month. */
export const SHIFT_THRESHOLD = 0.5;
/**
 * Values a month needs, in both months compared, for the shift to be computed: with fewer, the quartiles are
 * the positions of one or two values (a single value has an IQR of 0), and nearly any change would be flagged.
 */
export const SHIFT_MIN_N = 10;

function add(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

function hospitalReport(m: HospitalManifest): HospitalReport {
  const scopes = Object.keys(m.scopes).sort();
  const rows = { read: 0, accepted: 0, rejected: 0 };
  const byRule: Record<string, number> = {};
  let prev: number | null = null;
  let rerunRead = 0;
  let defaulted = 0;
  let pairs = 0;
  let viol = 0;
  let demo = false;
  const warnings: string[] = [];
  const filledWeighted: Record<string, number> = {};
  // Months a --period run replaced after a whole-file run (scope `all`) of the same hospital: the curated data holds
  // the --period run's rows of them, but the counts below add both runs, as the whole-file run's counts are not
  // kept by month (a rejected row may have no month). Rates stay those of the rows read; the report says so.
  const whole = m.scopes.all;
  const replaced = whole ? scopes.filter((s) => s !== 'all' && whole.months?.[s] !== undefined) : [];
  if (replaced.length > 0) {
    warnings.push(
      `${m.dataset} ${m.hospital_id}: ${replaced.join(', ')} processed again with --period after the whole-file run: ` +
        `the counts add both runs' rows of ${replaced.length > 1 ? 'those months' : 'that month'} (the curated data holds the --period run's)`,
    );
  }
  for (const s of scopes) {
    const e: ScopeEntry = m.scopes[s];
    rows.read += e.rows.read;
    rows.accepted += e.rows.accepted;
    rows.rejected += e.rows.rejected;
    add(byRule, e.rejects_by_rule);
    // Row count vs the previous run, over the scopes that had one: a --period month run for the first time has
    // nothing to compare with, and counting its rows against the other months' previous runs would make the
    // rerun of one month look like growth by all the others.
    if (e.previous_rows_read !== null) {
      prev = (prev ?? 0) + e.previous_rows_read;
      rerunRead += e.rows.read;
    }
    // This hospital's rows of the file; a manifest written before they were recorded has the whole file's only.
    const checks = e.hospital ?? e.file;
    defaulted += checks.defaultedReferenceRanges;
    pairs += checks.bpPairs;
    viol += checks.bpViolations;
    demo ||= e.demo_key;
    warnings.push(...e.file.warnings);
    for (const [c, v] of Object.entries(checks.completeness)) filledWeighted[c] = (filledWeighted[c] ?? 0) + (v ?? 0) * e.rows.read;
  }
  const completeness = Object.fromEntries(Object.entries(filledWeighted).map(([c, v]) => [c, rows.read ? v / rows.read : null]));
  return {
    dataset: m.dataset,
    hospital_id: m.hospital_id,
    scopes,
    rows,
    reject_rate: rows.read ? rows.rejected / rows.read : 0,
    rejects_by_rule: byRule,
    completeness,
    defaulted_reference_ranges: defaulted,
    bp_pairs: pairs,
    bp_systolic_not_above_diastolic: viol,
    previous_rows_read: prev,
    row_count_change: prev ? (rerunRead - prev) / prev : null,
    demo_key: demo,
    warnings: [...new Set(warnings)],
  };
}

/** Month-over-month median shift per hospital and measure, in IQRs of the earlier month. */
export function shifts(dataset: Dataset, rows: StatRow[]): Shift[] {
  const out: Shift[] = [];
  const byKey = new Map<string, StatRow[]>();
  // Months with too few values are left out before pairing, so the month after one is compared with the latest
  // earlier month that has enough (a small month in between must not hide a shift).
  for (const r of rows) {
    if (r.n < SHIFT_MIN_N) continue;
    const k = `${r.hospital_id}\u0000${r.measure}`;
    (byKey.get(k) ?? byKey.set(k, []).get(k)!).push(r);
  }
  for (const list of byKey.values()) {
    list.sort((a, b) => (a.month < b.month ? -1 : 1));
    for (let i = 1; i < list.length; i++) {
      const [a, b] = [list[i - 1], list[i]];
      if (a.p50 === null || b.p50 === null || a.p25 === null || a.p75 === null) continue;
      const iqr = Math.max(a.p75 - a.p25, Math.abs(a.p50) * 1e-3, 1e-9);
      const shift = Math.abs(b.p50 - a.p50) / iqr;
      out.push({ dataset, hospital_id: b.hospital_id, measure: b.measure, month: b.month, previous_month: a.month, median_shift_iqr: shift, flagged: shift > SHIFT_THRESHOLD });
    }
  }
  return out;
}

export function buildReport(out: string, maxRejectRate: number): QualityReport {
  const hospitals: HospitalReport[] = [];
  const gates: Gate[] = [];
  const allShifts: Shift[] = [];
  for (const dataset of DATASETS) {
    for (const m of readManifests(out, dataset)) {
      const h = hospitalReport(m);
      hospitals.push(h);
      const ledger = h.rows.read === h.rows.accepted + h.rows.rejected;
      gates.push({ dataset, hospital_id: h.hospital_id, gate: 'ledger', value: h.rows.read - h.rows.accepted - h.rows.rejected, threshold: 0, passed: ledger });
      // Rows whose hospital_id is invalid are all rejected by definition: they count in the dataset's gate below.
      if (h.hospital_id !== INVALID_HOSPITAL) gates.push({ dataset, hospital_id: h.hospital_id, gate: 'reject_rate', value: h.reject_rate, threshold: maxRejectRate, passed: h.reject_rate <= maxRejectRate });
    }
    const mine = hospitals.filter((h) => h.dataset === dataset);
    if (mine.length > 0) {
      const read = mine.reduce((s, h) => s + h.rows.read, 0);
      const rate = read ? mine.reduce((s, h) => s + h.rows.rejected, 0) / read : 0;
      gates.push({ dataset, hospital_id: ALL_HOSPITALS, gate: 'reject_rate', value: rate, threshold: maxRejectRate, passed: rate <= maxRejectRate });
    }
    const files = readSketches(out, dataset);
    if (files.length > 0) allShifts.push(...shifts(dataset, computeStats(dataset, files).filter((r) => r.hospital_id !== ALL_HOSPITALS)));
  }
  const inputs: QualityReport['inputs'] = [];
  for (const dataset of DATASETS) {
    const byHospital = new Map(readManifests(out, dataset).map((m) => [m.hospital_id, m]));
    const all = readJsonFiles<InputManifest>(join(out, '_manifests', dataset, 'inputs'), undefined, InputManifestShape).map((f) => f.value);
    for (const i of all) {
      // An input without rows (an empty delivery) is replaced by an input with rows committed after it for the
      // same scope (the corrected delivery, under another path: the Airflow flow processes the split files), so
      // its "zero rows" warning does not stay in every later report.
      if (i.hospitals.length === 0 && all.some((j) => j.hospitals.length > 0 && j.scope === i.scope && j.committed_at > i.committed_at)) continue;
      // A rerun of a partition replaces it, from whatever path its input now has: the file that produced the
      // partition before no longer speaks for it, and one that produces none any more is left out.
      const current = (h: string) => {
        const e = byHospital.get(h)?.scopes[i.scope];
        return !!e && sourceOf(e) === sourceOf(i);
      };
      const superseded = i.hospitals.filter((h) => !current(h));
      if (i.hospitals.length > 0 && superseded.length === i.hospitals.length) continue;
      inputs.push({ dataset, ...i, superseded_hospitals: superseded });
    }
  }
  return {
    generated_at: new Date().toISOString(),
    inputs,
    max_reject_rate: maxRejectRate,
    passed: gates.every((g) => g.passed),
    gates,
    hospitals,
    distribution_shifts: allShifts.filter((s) => s.flagged),
    rule_catalogue: RULES,
  };
}

const esc = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (x: number | null, digits = 2) => (x === null ? '—' : `${(100 * x).toFixed(digits)}%`);
/**
 * A rate beside the threshold it is gated on: two decimals, or as many more (up to 6) as it takes for
 * unequal numbers to read differently, so a gate that fails never shows 5.00 % against 5.00 %.
 */
const pctGated = (x: number, threshold: number) => {
  let digits = 2;
  while (digits < 6 && x !== threshold && pct(x, digits) === pct(threshold, digits)) digits++;
  return [pct(x, digits), pct(threshold, digits)] as const;
};
/** The threshold itself, with the decimals it has (two at least, six at most): 4.999% is not shown as 5.00%. */
const pctExact = (x: number) => {
  let digits = 2;
  while (digits < 6 && Math.abs(Number((100 * x).toFixed(digits)) - 100 * x) > 1e-9) digits++;
  return pct(x, digits);
};

export function reportHtml(r: QualityReport): string {
  const rows = r.hospitals
    .map((h) => {
      const gate = r.gates.filter((g) => g.dataset === h.dataset && g.hospital_id === h.hospital_id).every((g) => g.passed);
      const rules = Object.entries(h.rejects_by_rule).map(([k, v]) => `${esc(k)}: ${v}`).join('<br>');
      return `<tr class="${gate ? 'ok' : 'fail'}"><td>${esc(h.dataset)}</td><td>${esc(h.hospital_id)}</td><td>${h.rows.read}</td><td>${h.rows.accepted}</td><td>${h.rows.rejected}</td><td>${pctGated(h.reject_rate, r.max_reject_rate)[0]}</td><td>${gate ? 'pass' : 'FAIL'}</td><td>${rules}</td><td>${h.row_count_change === null ? '—' : pct(h.row_count_change)}</td><td>${h.bp_systolic_not_above_diastolic}/${h.bp_pairs}</td><td>${h.defaulted_reference_ranges}</td></tr>`;
    })
    .join('\n');
  const completeness = r.hospitals
    .map((h) => `<tr><td>${esc(h.dataset)}</td><td>${esc(h.hospital_id)}</td>${Object.entries(h.completeness).map(([c, v]) => `<td title="${esc(c)}">${esc(c)}: ${pct(v)}</td>`).join('')}</tr>`)
    .join('\n');
  const shiftRows = r.distribution_shifts
    .map((s) => `<tr><td>${esc(s.dataset)}</td><td>${esc(s.hospital_id)}</td><td>${esc(s.measure)}</td><td>${esc(s.previous_month)} → ${esc(s.month)}</td><td>${s.median_shift_iqr.toFixed(2)}</td></tr>`)
    .join('\n');
  // Every gate, so a failure shows where it is: the dataset-wide reject rate (rows with an invalid hospital ID
  // included) is in no hospital's row.
  const gates = r.gates
    .map((g) => {
      const [value, threshold] = g.gate === 'reject_rate' ? pctGated(g.value, g.threshold) : [String(g.value), String(g.threshold)];
      return `<tr class="${g.passed ? 'ok' : 'fail'}"><td>${esc(g.dataset)}</td><td>${esc(g.hospital_id)}</td><td>${g.gate}</td><td>${value}</td><td>${threshold}</td><td>${g.passed ? 'pass' : 'FAIL'}</td></tr>`;
    })
    .join('\n');
  const warnings = [...new Set(r.inputs.flatMap((i) => i.warnings).concat(r.hospitals.flatMap((h) => h.warnings.concat(h.demo_key ? ['Pseudonymised with the built-in demo key: set HCP_PSEUDONYM_KEY for real data.'] : []))))];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Data quality report</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(-n+2),th{text-align:left}tr.fail{background:#fde2e2}.banner{padding:.6rem 1rem;border-radius:4px;font-weight:600}.pass{background:#e3f6e5}.failb{background:#fde2e2}</style></head>
<body><h1>Data quality report</h1>
<p class="banner ${r.passed ? 'pass' : 'failb'}">${r.passed ? 'All quality gates passed' : 'A quality gate failed'} — maximum reject rate ${pctExact(r.max_reject_rate)}; generated ${esc(r.generated_at)}</p>
${warnings.length ? `<h2>Warnings</h2><ul>${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}
<h2>Gates</h2><table><tr><th>dataset</th><th>hospital</th><th>gate</th><th>value</th><th>threshold</th><th>result</th></tr>
${gates}</table>
<h2>Rows by hospital</h2>
<table><tr><th>dataset</th><th>hospital</th><th>read</th><th>curated</th><th>quarantined</th><th>reject rate</th><th>gate</th><th>rejections by rule</th><th>rows vs previous run</th><th>systolic ≤ diastolic / pairs</th><th>default ref. ranges</th></tr>
${rows}</table>
<h2>Completeness (non-empty share per column)</h2><table>${completeness}</table>
<h2>Distribution shifts vs previous month (median moved &gt; ${SHIFT_THRESHOLD} IQR; months with ${SHIFT_MIN_N} values or more)</h2>
${shiftRows ? `<table><tr><th>dataset</th><th>hospital</th><th>measure</th><th>months</th><th>shift (IQR)</th></tr>${shiftRows}</table>` : '<p>None.</p>'}
<h2>Rule catalogue</h2><table>${Object.entries(r.rule_catalogue).map(([k, v]) => `<tr><td>${esc(k)}</td><td style="text-align:left">${esc(v)}</td></tr>`).join('')}</table>
</body></html>
`;
}

/** Writes quality/report.{json,html}; the caller writes the root manifest and _SUCCESS. */
export function writeReport(out: string, maxRejectRate: number): QualityReport {
  rmSync(join(out, '_SUCCESS'), { force: true });
  const r = buildReport(out, maxRejectRate);
  writeJsonAtomic(join(out, 'quality', 'report.json'), r);
  writeFileAtomic(join(out, 'quality', 'report.html'), reportHtml(r));
  return r;
}
