/**
 * The quality report's report-level checks (SPEC §2) are each hospital's
 * own: completeness, defaulted reference ranges and systolic ≤ diastolic
 * pairs count that hospital's rows of the input, whether the file holds one
 * hospital (the Airflow flow: `partition`, then `process` per file) or
 * several (`run` on a combined file). Expectations are counted here from
 * the input rows, independently of the pipeline.
 */
import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, reportHtml, shifts } from '../src/sinks/report.js';
import type { StatRow } from '../src/sinks/stats.js';
import { csvRecords, curatedScan, describeRun, query, removeTempDirs, runCli, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const COMMON = ['--as-of', '2025-01-01', '--max-reject-rate', '1', '--no-progress'];
const REQUIRED = {
  vitals: ['hospital_id', 'measurement_date', 'patient_id', 'vital_type', 'value', 'unit'],
  labs: ['hospital_id', 'test_date', 'patient_id', 'test_type', 'result_value', 'reference_range', 'unit'],
} as const;
type Dataset = keyof typeof REQUIRED;

/** A row's partition as SPEC §1 names it: a valid, unreserved hospital_id, else `__invalid__`. */
const partitionOf = (h: string) => (/^[A-Za-z0-9_-]{1,32}$/.test(h) && h !== 'ALL' ? h : '__invalid__');

interface Checks {
  read: number;
  completeness: Record<string, number>;
  defaulted_reference_ranges: number;
  bp_pairs: number;
  bp_systolic_not_above_diastolic: number;
}

/**
 * Per hospital, from the input text: rows read and the non-empty share of
 * each required column (rows that do not split into the header's fields
 * count as empty everywhere, under `__invalid__`: README, unattributable records). Pairs and defaulted ranges count every row
 * with its required cells filled (reference_range aside): enough for
 * inputs whose only rejected rows miss a cell.
 */
function countChecks(dataset: Dataset, text: string): Map<string, Checks> {
  const [head, ...rows] = csvRecords(text);
  const col = (name: string) => head.fields.indexOf(name);
  const acc = new Map<string, { read: number; filled: number[]; defaulted: number; bp: Map<string, { sys?: number; dia?: number }> }>();
  for (const { fields } of rows) {
    const split = fields.length === head.fields.length;
    // A row with too few or too many fields cannot be attributed: its fields may be shifted.
    const h = split ? partitionOf(fields[col('hospital_id')].trim()) : '__invalid__';
    const a = acc.get(h) ?? { read: 0, filled: REQUIRED[dataset].map(() => 0), defaulted: 0, bp: new Map() };
    acc.set(h, a);
    a.read++;
    if (!split) continue;
    const cell = (name: string) => fields[col(name)].trim();
    REQUIRED[dataset].forEach((c, i) => (a.filled[i] += cell(c) === '' ? 0 : 1));
    if (REQUIRED[dataset].some((c) => c !== 'reference_range' && cell(c) === '')) continue;
    if (dataset === 'labs' && cell('reference_range') === '') a.defaulted++;
    if (dataset === 'vitals' && cell('vital_type').startsWith('blood_pressure_')) {
      const k = `${cell('patient_id')}|${cell('measurement_date')}`;
      const p = a.bp.get(k) ?? {};
      a.bp.set(k, p);
      if (cell('vital_type') === 'blood_pressure_systolic') p.sys = Number(cell('value'));
      else p.dia = Number(cell('value'));
    }
  }
  const out = new Map<string, Checks>();
  for (const [h, a] of acc) {
    const pairs = [...a.bp.values()].filter((p) => p.sys !== undefined && p.dia !== undefined);
    out.set(h, {
      read: a.read,
      completeness: Object.fromEntries(REQUIRED[dataset].map((c, i) => [c, a.filled[i] / a.read])),
      defaulted_reference_ranges: a.defaulted,
      bp_pairs: pairs.length,
      bp_systolic_not_above_diastolic: pairs.filter((p) => p.sys! <= p.dia!).length,
    });
  }
  return out;
}

interface ReportHospital extends Omit<Checks, 'read'> {
  dataset: Dataset;
  hospital_id: string;
  rows: { read: number; accepted: number; rejected: number };
  rejects_by_rule: Record<string, number>;
}

const readReport = (out: string): ReportHospital[] => JSON.parse(readFileSync(join(out, 'quality', 'report.json'), 'utf8')).hospitals;

/** The report's check figures of one hospital, in the shape `countChecks` gives. */
const checksOf = (h: ReportHospital): Checks => ({
  read: h.rows.read,
  completeness: h.completeness,
  defaulted_reference_ranges: h.defaulted_reference_ranges,
  bp_pairs: h.bp_pairs,
  bp_systolic_not_above_diastolic: h.bp_systolic_not_above_diastolic,
});

async function cli(args: string[]): Promise<void> {
  const r = await runCli([...args, ...COMMON], { timeoutMs: 120_000 });
  expect(r.code, describeRun(r)).toBe(0);
}

describe('one file, two hospitals: each hospital gets its own figures', () => {
  // H1: one pair with systolic below diastolic, a lab without reference range;
  // H2: one normal pair, one row without unit (rejected), a lab with its range.
  const input = {
    vitals: [
      'hospital_id,measurement_date,patient_id,vital_type,value,unit',
      'H1,2024-01-05,P1,blood_pressure_systolic,80,mmHg',
      'H1,2024-01-05,P1,blood_pressure_diastolic,90,mmHg',
      'H2,2024-01-05,P2,blood_pressure_systolic,120,mmHg',
      'H2,2024-01-05,P2,blood_pressure_diastolic,80,mmHg',
      'H2,2024-01-06,P2,heart_rate,70,',
    ],
    labs: [
      'hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit',
      'H1,2024-01-05,P1,glucose,90,,mg/dL',
      'H2,2024-01-05,P2,glucose,90,70-100,mg/dL',
    ],
  };
  let report: ReportHospital[];
  let out: string;
  beforeAll(async () => {
    const dir = tempDir('hcp-report-');
    out = join(dir, 'out');
    for (const [d, lines] of Object.entries(input)) writeFileSync(join(dir, `${d}.csv`), lines.join('\n') + '\n');
    await cli(['run', '--vitals', join(dir, 'vitals.csv'), '--labs', join(dir, 'labs.csv'), '--out', out, '--workers', '1']);
    report = readReport(out);
  }, 180_000);

  it.each(['vitals', 'labs'] as const)('%s: completeness, defaulted ranges and pairs per hospital = counted from the input', (d) => {
    const expected = countChecks(d, input[d].join('\n') + '\n');
    const got = report.filter((h) => h.dataset === d);
    expect(got.map((h) => h.hospital_id)).toEqual(['H1', 'H2']);
    for (const h of got) expect(checksOf(h), h.hospital_id).toEqual(expected.get(h.hospital_id));
  });

  it('a manifest entry written before the per-hospital checks were recorded still reads (with the whole file\'s figures)', () => {
    const old = join(tempDir('hcp-report-old-'), 'out');
    cpSync(out, old, { recursive: true });
    const dir = join(old, '_manifests', 'vitals');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      const m = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      delete m.scopes.all.hospital;
      writeFileSync(join(dir, f), JSON.stringify(m));
    }
    const vitals = buildReport(old, 1).hospitals.filter((h) => h.dataset === 'vitals');
    expect(vitals.map((h) => [h.hospital_id, h.bp_pairs, h.bp_systolic_not_above_diastolic])).toEqual([['H1', 2, 1], ['H2', 2, 1]]);
    // Labs entries were left as written: their own figures.
    expect(buildReport(old, 1).hospitals.filter((h) => h.dataset === 'labs').map((h) => h.defaulted_reference_ranges)).toEqual([1, 0]);
  });

  it('the figures the review found wrong (whole-file totals shown for each hospital)', () => {
    const get = (d: string, h: string) => report.find((x) => x.dataset === d && x.hospital_id === h)!;
    expect([get('vitals', 'H1').bp_pairs, get('vitals', 'H1').bp_systolic_not_above_diastolic]).toEqual([1, 1]);
    expect([get('vitals', 'H2').bp_pairs, get('vitals', 'H2').bp_systolic_not_above_diastolic]).toEqual([1, 0]);
    expect(get('vitals', 'H1').completeness.unit).toBe(1);
    expect(get('vitals', 'H2').completeness.unit).toBeCloseTo(2 / 3, 12);
    expect([get('labs', 'H1').defaulted_reference_ranges, get('labs', 'H2').defaulted_reference_ranges]).toEqual([1, 0]);
    expect([get('labs', 'H1').completeness.reference_range, get('labs', 'H2').completeness.reference_range]).toEqual([0, 1]);
  });
});

describe('generated data: `run` on the combined files = `partition` + `process` per hospital file', () => {
  const FILES = { vitals: 'vitals_2024.csv', labs: 'lab_results_2024.csv' } as const;
  let dir: string;
  let combined: ReportHospital[];
  let perFile: ReportHospital[];
  beforeAll(async () => {
    dir = tempDir('hcp-report-flows-');
    const data = join(dir, 'data');
    await cli(['generate', '--out', data, '--rows', '3000', '--seed', '7', '--hospitals', '3', '--months', '2', '--year', '2024']);
    // Small chunks: a hospital's rows (and its pairs) are spread over several chunks.
    const shared = ['--workers', '2', '--chunk-size', '16384'];
    await cli(['run', '--vitals', join(data, FILES.vitals), '--labs', join(data, FILES.labs), '--out', join(dir, 'combined'), ...shared]);
    for (const d of ['vitals', 'labs'] as const) {
      await cli(['partition', '--dataset', d, '--input', join(data, FILES[d]), '--landing', join(dir, 'landing')]);
      for (const f of readdirSync(join(dir, 'landing', d)).sort()) {
        await cli(['process', '--dataset', d, '--input', join(dir, 'landing', d, f), '--out', join(dir, 'per-file'), ...shared]);
      }
    }
    await cli(['stats', '--out', join(dir, 'per-file')]);
    await cli(['report', '--out', join(dir, 'per-file')]);
    combined = readReport(join(dir, 'combined'));
    perFile = readReport(join(dir, 'per-file'));
  }, 300_000);

  it('the same hospitals, rows, rejections by rule and check figures in both reports', () => {
    const key = (h: ReportHospital) => `${h.dataset}/${h.hospital_id}`;
    const figures = (hs: ReportHospital[]) => hs.map((h) => ({ key: key(h), rows: h.rows, rejects_by_rule: h.rejects_by_rule, ...checksOf(h) }));
    expect(combined.length).toBeGreaterThan(4);
    expect(figures(combined)).toEqual(figures(perFile));
    // Not the same figures for every hospital (what whole-file totals would give).
    for (const d of ['vitals', 'labs']) {
      const hs = combined.filter((h) => h.dataset === d);
      expect(new Set(hs.map((h) => JSON.stringify(h.completeness))).size, d).toBeGreaterThan(1);
    }
  });

  it.each(['vitals', 'labs'] as const)('%s: completeness per hospital = counted from the input; pairs and defaulted ranges add up to the file', (d) => {
    const expected = countChecks(d, readFileSync(join(dir, 'data', FILES[d]), 'utf8'));
    const hs = combined.filter((h) => h.dataset === d);
    expect(hs.map((h) => h.hospital_id).sort()).toEqual([...expected.keys()].sort());
    for (const h of hs) {
      const e = expected.get(h.hospital_id)!;
      expect(h.rows.read, h.hospital_id).toBe(e.read);
      for (const c of REQUIRED[d]) expect(h.completeness[c], `${h.hospital_id} ${c}`).toBeCloseTo(e.completeness[c], 12);
    }
    // The manifests' whole-file facts are counted apart (by the workers): the hospitals' figures add up to them.
    const manifests = readdirSync(join(dir, 'combined', '_manifests', d))
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(dir, 'combined', '_manifests', d, f), 'utf8')).scopes.all);
    const file = manifests[0].file;
    const read = hs.reduce((s, h) => s + h.rows.read, 0);
    const sum = (k: 'defaulted_reference_ranges' | 'bp_pairs' | 'bp_systolic_not_above_diastolic') => hs.reduce((s, h) => s + h[k], 0);
    expect([sum('defaulted_reference_ranges'), sum('bp_pairs'), sum('bp_systolic_not_above_diastolic')]).toEqual([file.defaultedReferenceRanges, file.bpPairs, file.bpViolations]);
    if (d === 'labs') expect(sum('defaulted_reference_ranges')).toBeGreaterThan(0);
    else expect(sum('bp_pairs')).toBeGreaterThan(0);
    for (const c of REQUIRED[d]) {
      const filled = hs.reduce((s, h) => s + h.completeness[c] * h.rows.read, 0);
      expect(filled, c).toBeCloseTo(file.completeness[c] * read, 6);
    }
  });
});

describe('row count vs the previous run, with --period months side by side (the Airflow flow)', () => {
  /** `n` heart-rate rows of hospital H1 in `month`, each a different patient (no duplicates). */
  const monthFile = (month: string, n: number) =>
    ['hospital_id,measurement_date,patient_id,vital_type,value,unit', ...Array.from({ length: n }, (_, i) => `H1,${month}-10,P${i},heart_rate,${60 + i},bpm`)].join('\n') + '\n';
  let dir: string;
  beforeAll(() => {
    dir = tempDir('hcp-report-period-');
  });

  // Each step processes one month; expected: the rows of the previous runs of the months that had one, and the
  // change of those months' rows now against them (a month run once has nothing to compare with, so it is left
  // out of both). The last step: January 9 rows against 6, February (its last run) 2 against 4.
  it.each<[string, number, number | null, number | null]>([
    ['2024-01', 6, null, null],
    ['2024-02', 4, null, null],
    ['2024-02', 4, 4, 0],
    ['2024-02', 2, 4, (2 - 4) / 4],
    ['2024-01', 9, 6 + 4, (9 + 2 - (6 + 4)) / (6 + 4)],
  ])('process --period %s with %i rows: previous %s, change %s', async (month, n, previous, change) => {
    const input = join(dir, `${month}.csv`);
    writeFileSync(input, monthFile(month, n));
    await cli(['process', '--dataset', 'vitals', '--input', input, '--out', join(dir, 'out'), '--period', month, '--workers', '1']);
    const h = buildReport(join(dir, 'out'), 1).hospitals.find((x) => x.dataset === 'vitals' && x.hospital_id === 'H1')!;
    expect([h.previous_rows_read, h.row_count_change]).toEqual([previous, change]);
  }, 60_000);
});

describe('report.html shows every gate, the dataset-wide one included', () => {
  // H1: 20 rows, one rejected (no unit); two rows with an invalid hospital ID, which only the dataset-wide gate counts.
  const vitals = [
    'hospital_id,measurement_date,patient_id,vital_type,value,unit',
    ...Array.from({ length: 19 }, (_, i) => `H1,2024-01-05,P${i},heart_rate,${60 + i},bpm`),
    'H1,2024-01-05,P19,heart_rate,80,',
    'bad id,2024-01-05,P1,heart_rate,70,bpm',
    'bad id,2024-01-05,P2,heart_rate,71,bpm',
  ];
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  let out: string;
  beforeAll(async () => {
    const dir = tempDir('hcp-report-gates-');
    out = join(dir, 'out');
    writeFileSync(join(dir, 'vitals.csv'), vitals.join('\n') + '\n');
    await cli(['process', '--dataset', 'vitals', '--input', join(dir, 'vitals.csv'), '--out', out, '--workers', '1']);
  }, 60_000);

  /** The rows of the HTML's gate table: dataset, hospital, gate, value, threshold, result. */
  const gateRows = (html: string) => {
    const table = /<h2>Gates<\/h2><table>([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '';
    return [...table.matchAll(/<tr class="(?:ok|fail)">(.*?)<\/tr>/g)].map((m) => [...m[1].matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => c[1]));
  };

  it.each<[number, boolean, boolean]>([
    // threshold, H1 (1/20 rejected) passes, vitals as a whole (3/22) passes
    [0.2, true, true],
    [0.1, true, false],
    [0.01, false, false],
  ])('--max-reject-rate %s: H1 passes %s, ALL passes %s', (threshold, h1, all) => {
    const html = reportHtml(buildReport(out, threshold));
    const row = (h: string, gate: string, value: string, passed: boolean) => ['vitals', h, gate, value, gate === 'ledger' ? '0' : pct(threshold), passed ? 'pass' : 'FAIL'];
    expect(gateRows(html)).toEqual([
      row('H1', 'ledger', '0', true),
      row('H1', 'reject_rate', pct(1 / 20), h1),
      row('__invalid__', 'ledger', '0', true),
      row('ALL', 'reject_rate', pct(3 / 22), all),
    ]);
    expect(html.includes('All quality gates passed')).toBe(h1 && all);
  });

  it.each<[number, string, string]>([
    // threshold just under H1's 5 % (1/20), and the figures the gates table shows for H1: value, threshold
    [0.04999, '5.000%', '4.999%'],
    [0.049999, '5.0000%', '4.9999%'],
    [0.05, '5.00%', '5.00%'], // equal: passes, two decimals
  ])('a rate that differs from its threshold reads differently (threshold %s)', (threshold, value, shown) => {
    const html = reportHtml(buildReport(out, threshold));
    expect(gateRows(html).find((x) => x[1] === 'H1' && x[2] === 'reject_rate')).toEqual(['vitals', 'H1', 'reject_rate', value, shown, threshold < 0.05 ? 'FAIL' : 'pass']);
    // The banner names the threshold itself, with its own decimals.
    expect(html).toContain(`maximum reject rate ${{ 0.04999: '4.999%', 0.049999: '4.9999%', 0.05: '5.00%' }[threshold]};`);
  });
});

describe('an empty delivery, then the corrected file for the same month under another path (the Airflow flow)', () => {
  const HEADER = 'hospital_id,measurement_date,patient_id,vital_type,value,unit';
  const rows = (n: number) => [HEADER, ...Array.from({ length: n }, (_, i) => `H1,2024-05-10,P${i},heart_rate,${60 + i},bpm`)].join('\n') + '\n';
  const headerOnly = (out: string) => buildReport(out, 1).inputs.filter((i) => i.warnings.some((w) => w.includes('header only')));

  // Steps in order: which file (`empty` is header only), its period; expected: the header-only inputs the report still lists.
  it.each<[string, [string, string][], string[]]>([
    ['the corrected file replaces the empty one', [['empty', '2024-05'], ['rows', '2024-05']], []],
    ['an empty delivery after the rows stays listed (its warning is news)', [['rows', '2024-05'], ['empty', '2024-05']], ['empty']],
    ['another month does not replace it', [['empty', '2024-05'], ['rows-june', '2024-06']], ['empty']],
    ['nor another file without rows', [['empty', '2024-05'], ['empty-too', '2024-05']], ['empty', 'empty-too']],
  ])('%s', async (_, steps, expected) => {
    const dir = tempDir('hcp-report-empty-');
    const out = join(dir, 'out');
    for (const [name, period] of steps) {
      const input = join(dir, `${name}.csv`);
      writeFileSync(input, name.startsWith('empty') ? HEADER + '\n' : rows(3).replaceAll('2024-05', period));
      await cli(['process', '--dataset', 'vitals', '--input', input, '--out', out, '--period', period, '--workers', '1']);
    }
    // Input manifests are named by a hash of their path: listed in no particular order.
    expect(headerOnly(out).map((i) => i.input.replace(/^.*\//, '').replace(/\.csv$/, '')).sort()).toEqual(expected);
  }, 60_000);
});

describe('a whole-file run, then --period runs of some of its months', () => {
  const HEADER = 'hospital_id,measurement_date,patient_id,vital_type,value,unit';
  /** `n` accepted heart-rate rows of H1 in `month` and one rejected (no unit). */
  const rowsOf = (month: string, n: number) => [
    ...Array.from({ length: n }, (_, i) => `H1,${month}-10,P${i},heart_rate,${60 + i},bpm`),
    `H1,${month}-11,P0,heart_rate,70,`,
  ];

  // Steps: [period or 'all', {month: accepted rows}] (one rejected row a month); expected: whether the report warns
  // that months were counted twice.
  it.each<[string, [string, Record<string, number>][], boolean]>([
    ['February again, the same rows', [['all', { '2024-01': 5, '2024-02': 4 }], ['2024-02', { '2024-02': 4 }]], true],
    ['both months again, other rows', [['all', { '2024-01': 5, '2024-02': 4 }], ['2024-02', { '2024-02': 2 }], ['2024-01', { '2024-01': 3 }]], true],
    ['a month the whole file did not have', [['all', { '2024-01': 5 }], ['2024-03', { '2024-03': 6 }]], false],
    ['a whole-file run after a --period run replaces everything', [['2024-02', { '2024-02': 7 }], ['all', { '2024-01': 5, '2024-02': 4 }]], false],
  ])('%s: the counts add the runs the manifest holds, the rate is theirs, and overlaps are named', async (_, steps, warned) => {
    const dir = tempDir('hcp-report-overlap-');
    const out = join(dir, 'out');
    let k = 0;
    for (const [scope, months] of steps) {
      const input = join(dir, `step${k++}.csv`);
      writeFileSync(input, [HEADER, ...Object.entries(months).flatMap(([m, n]) => rowsOf(m, n))].join('\n') + '\n');
      await cli(['process', '--dataset', 'vitals', '--input', input, '--out', out, ...(scope === 'all' ? [] : ['--period', scope]), '--workers', '1']);
    }
    // The runs the output holds now: the last whole-file run and the --period runs after it (each month's last).
    const last = steps.map(([scope]) => scope).lastIndexOf('all');
    const current = [...new Map(steps.slice(Math.max(0, last))).values()];
    const accepted = current.reduce((r, months) => r + Object.values(months).reduce((x, y) => x + y, 0), 0);
    const rejected = current.reduce((r, months) => r + Object.keys(months).length, 0);
    const report = buildReport(out, 0.2);
    const h = report.hospitals.find((x) => x.hospital_id === 'H1')!;
    expect(h.rows).toEqual({ read: accepted + rejected, accepted, rejected });
    expect(h.reject_rate).toBeCloseTo(rejected / (accepted + rejected), 12);
    for (const v of Object.values(h.completeness)) expect(v).toBeLessThanOrEqual(1);
    expect(h.warnings.some((w) => w.includes('processed again with --period after the whole-file run'))).toBe(warned);
  }, 60_000);
});

describe('distribution shift: each month against the latest earlier month with data (SPEC §2)', () => {
  /** A month's statistics row with the quartiles that matter here. */
  const row = (month: string, n: number, p25: number, p50: number, p75: number, measure = 'heart_rate', hospital = 'H1') =>
    ({ dataset: 'vitals', hospital_id: hospital, month, measure, unit: 'bpm', n, n_patients: n, mean: p50, stddev: 1, min: p25, max: p75, p05: p25, p25, p50, p75, p95: p75, p99: p75, n_low: 0, n_high: 0 }) as StatRow;
  // rows; expected: [month, previous month, shift in IQRs of the previous month, flagged]
  it.each<[string, StatRow[], [string, string, number, boolean][]]>([
    ['a move of 0.6 IQR is flagged', [row('2024-01', 50, 60, 70, 80), row('2024-02', 50, 62, 82, 92)], [['2024-02', '2024-01', 12 / 20, true]]],
    ['a move of 0.4 IQR is not', [row('2024-01', 50, 60, 70, 80), row('2024-02', 50, 60, 62, 80)], [['2024-02', '2024-01', 8 / 20, false]]],
    ['exactly half an IQR is not', [row('2024-01', 50, 60, 70, 80), row('2024-02', 50, 60, 80, 90)], [['2024-02', '2024-01', 10 / 20, false]]],
    ['the IQR is the earlier month\'s', [row('2024-01', 50, 69, 70, 71), row('2024-02', 50, 40, 72, 100)], [['2024-02', '2024-01', 2 / 2, true]]],
    ['a gap: against the latest earlier month with data', [row('2024-01', 50, 60, 70, 80), row('2024-03', 50, 60, 71, 80)], [['2024-03', '2024-01', 1 / 20, false]]],
    ['three months: each against the one before', [row('2024-01', 50, 60, 70, 80), row('2024-02', 50, 60, 80, 100), row('2024-03', 50, 60, 81, 100)], [['2024-02', '2024-01', 10 / 20, false], ['2024-03', '2024-02', 1 / 40, false]]],
    ['a previous month of one value is not compared', [row('2024-01', 1, 70, 70, 70), row('2024-02', 50, 60, 71, 80)], []],
    ['nor a month with fewer than 10 values', [row('2024-01', 50, 60, 70, 80), row('2024-02', 9, 90, 100, 110)], []],
    ['a small month in between is skipped, not a wall', [row('2024-01', 500, 60, 70, 80), row('2024-02', 5, 60, 71, 80), row('2024-03', 500, 100, 120, 140)], [['2024-03', '2024-01', 50 / 20, true]]],
    ['10 values in each are enough', [row('2024-01', 10, 60, 70, 80), row('2024-02', 10, 90, 100, 110)], [['2024-02', '2024-01', 30 / 20, true]]],
    ['other measures and hospitals are never compared', [row('2024-01', 50, 60, 70, 80), row('2024-02', 50, 10, 20, 30, 'weight'), row('2024-02', 50, 10, 20, 30, 'heart_rate', 'H2')], []],
  ])('%s', (_, rows, expected) => {
    const got = shifts('vitals', rows).map((s) => [s.month, s.previous_month, s.median_shift_iqr, s.flagged]);
    expect(got.length).toBe(expected.length);
    got.forEach((g, i) => {
      expect(g[0]).toBe(expected[i][0]);
      expect(g[1]).toBe(expected[i][1]);
      expect(g[2]).toBeCloseTo(expected[i][2], 12);
      expect(g[3]).toBe(expected[i][3]);
    });
  });
});
