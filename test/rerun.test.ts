/**
 * Reruns and runs without rows, through the CLI (SPEC §1, §5): a rerun of a
 * partition replaces what the previous run wrote for it (curated data,
 * quarantine, sketches, statistics, manifests), from whatever path the input
 * now has; and input without a single accepted row is a valid run whose
 * statistics files hold the header only, the gates deciding the exit code.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { STAT_COLUMNS } from '../src/sinks/stats.js';
import { type CliResult, describeRun, listFiles, query, readCsvObjects, removeTempDirs, runCli, sqlStr, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const VITALS = 'hospital_id,measurement_date,patient_id,vital_type,value,unit';
const LABS = 'hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit';
const csv = (...lines: string[]) => lines.join('\n') + '\n';
const OPTS = ['--workers', '1', '--as-of', '2025-01-01', '--no-progress'];

const exits = (r: CliResult, code: number) => expect(r.code, describeRun(r)).toBe(code);
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('process --period: a rerun replaces the month', () => {
  it('a month with no accepted row this time loses its curated data, sketch and rejects of the previous run', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    const input = join(dir, 'v.csv');
    const proc = () => runCli(['process', '--dataset', 'vitals', '--input', input, '--out', out, '--period', '2024-03', ...OPTS]);
    writeFileSync(input, csv(VITALS, 'H1,2024-03-05,P1,heart_rate,80,bpm', 'H1,2024-04-05,P1,heart_rate,90,bpm'));
    exits(await proc(), 0);
    const month = 'curated/vitals/hospital_id=H1/month=2024-03/part-00000.parquet';
    expect(listFiles(out)).toContain(month);

    // Now H1's only row is outside the period: rejected, nothing accepted for 2024-03.
    writeFileSync(input, csv(VITALS, 'H1,2024-04-05,P1,heart_rate,90,bpm'));
    const r = await proc();
    exits(r, 0);
    expect(r.json!.rows).toEqual({ read: 1, accepted: 0, rejected: 1 });
    expect(json(join(out, '_manifests/vitals/hospital_id=H1.json')).scopes['2024-03']).toMatchObject({ rows: { read: 1, accepted: 0, rejected: 1 }, months: {} });
    expect(listFiles(join(out, 'curated'))).toEqual([]);
    expect(existsSync(join(out, 'sketches/vitals/hospital_id=H1.json'))).toBe(false);
    const rejects = await readCsvObjects(join(out, 'quarantine/vitals/hospital_id=H1/rejects-2024-03.csv'));
    expect(rejects.map((x) => [x.line_number, x.reason_codes])).toEqual([['2', 'date.outside_period']]);
  });

  it('other months of the hospital stay', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    const input = join(dir, 'v.csv');
    const proc = (period: string) => runCli(['process', '--dataset', 'vitals', '--input', input, '--out', out, '--period', period, ...OPTS]);
    writeFileSync(input, csv(VITALS, 'H1,2024-03-05,P1,heart_rate,80,bpm', 'H1,2024-04-05,P1,heart_rate,90,bpm'));
    exits(await proc('2024-03'), 0);
    exits(await proc('2024-04'), 0);
    writeFileSync(input, csv(VITALS, 'H1,2024-04-05,P1,heart_rate,90,bpm'));
    exits(await proc('2024-03'), 0);
    expect(listFiles(join(out, 'curated'))).toEqual(['vitals/hospital_id=H1/month=2024-04/part-00000.parquet']);
    expect(Object.keys(json(join(out, 'sketches/vitals/hospital_id=H1.json')).months)).toEqual(['2024-04']);
  });
});

const STATS_HEADER = STAT_COLUMNS.join(',') + '\n';
const statsFiles = (dataset: string) => [`stats/monthly_${dataset}.parquet`, `stats/monthly_${dataset}.csv`, `stats/monthly_${dataset}_public.csv`];

/** Every statistics file of the dataset holds the header only (the Parquet file: the columns, no row). */
async function expectHeaderOnlyStats(out: string, dataset: string) {
  const [parquet, full, pub] = statsFiles(dataset).map((f) => join(out, f));
  expect(readFileSync(full, 'utf8')).toBe(STATS_HEADER);
  expect(readFileSync(pub, 'utf8')).toBe(STATS_HEADER);
  expect((await query(`SELECT count(*) AS n FROM read_parquet(${sqlStr(parquet)})`))[0].n).toBe(0);
  const cols = await query(`DESCRIBE SELECT * FROM read_parquet(${sqlStr(parquet)})`);
  expect(cols.map((c) => c.column_name)).toEqual([...STAT_COLUMNS]);
}

/** Writes the two inputs and runs `run` on them. */
async function runBoth(dir: string, out: string, vitals: string, labs: string): Promise<CliResult> {
  writeFileSync(join(dir, 'vitals.csv'), vitals);
  writeFileSync(join(dir, 'labs.csv'), labs);
  return runCli(['run', '--vitals', join(dir, 'vitals.csv'), '--labs', join(dir, 'labs.csv'), '--out', out, ...OPTS]);
}

describe('runs without accepted rows are valid runs', () => {
  it('both files header only: exit 0, _SUCCESS, header-only statistics for both datasets, the report warns', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    const r = await runBoth(dir, out, csv(VITALS), csv(LABS));
    exits(r, 0);
    expect(r.json).toMatchObject({ status: 'ok', gates: { passed: true, failed: [] } });
    expect(r.json!.stats.map((s: { dataset: string; rows: number }) => [s.dataset, s.rows])).toEqual([['vitals', 0], ['labs', 0]]);
    for (const d of ['vitals', 'labs']) await expectHeaderOnlyStats(out, d);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(true);
    const report = json(join(out, 'quality/report.json'));
    expect(report.hospitals).toEqual([]);
    expect(report.inputs.map((i: { rows: unknown }) => i.rows)).toEqual([{ read: 0, accepted: 0, rejected: 0 }, { read: 0, accepted: 0, rejected: 0 }]);
    expect(report.inputs.flatMap((i: { warnings: string[] }) => i.warnings).join('\n')).toMatch(/vitals\.csv: header only[^]*labs\.csv: header only/);
  });

  it('every row rejected: the reject-rate gate fails (exit 3), the statistics still written with the header only', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    const r = await runBoth(dir, out, csv(VITALS), csv(LABS, 'H1,2024-01-01,P1,glucose,abc,,mg/dL'));
    exits(r, 3);
    expect(r.json).toMatchObject({ status: 'gate_failed', gates: { passed: false } });
    expect(r.json!.gates.failed.map((g: { dataset: string; hospital_id: string; gate: string }) => `${g.dataset} ${g.hospital_id} ${g.gate}`)).toEqual(['labs H1 reject_rate', 'labs ALL reject_rate']);
    for (const d of ['vitals', 'labs']) await expectHeaderOnlyStats(out, d);
    expect(json(join(out, 'quality/report.json')).hospitals).toMatchObject([{ dataset: 'labs', hospital_id: 'H1', rows: { read: 1, accepted: 0, rejected: 1 } }]);
    expect(existsSync(join(out, '_manifest.json'))).toBe(true);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(false);
  });

  it('one dataset without rows: its statistics files exist beside the other dataset\'s', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    exits(await runBoth(dir, out, csv(VITALS, 'H1,2024-01-05,P1,heart_rate,72,bpm'), csv(LABS)), 0);
    await expectHeaderOnlyStats(out, 'labs');
    const vitals = await readCsvObjects(join(out, 'stats/monthly_vitals.csv'));
    expect(vitals.map((x) => [x.hospital_id, x.month, x.measure, x.n])).toEqual([['H1', '2024-01', 'heart_rate', '1'], ['ALL', '2024-01', 'heart_rate', '1']]);
  });

  it('stats after processing a header-only file: exit 0 and header-only files; with nothing processed: exit 2', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    writeFileSync(join(dir, 'v.csv'), csv(VITALS));
    exits(await runCli(['process', '--dataset', 'vitals', '--input', join(dir, 'v.csv'), '--out', out, ...OPTS]), 0);
    const r = await runCli(['stats', '--out', out]);
    exits(r, 0);
    expect(r.json!.datasets).toMatchObject([{ dataset: 'vitals', rows: 0, hospitals: 0 }]);
    await expectHeaderOnlyStats(out, 'vitals');
    expect(listFiles(join(out, 'stats'))).toEqual(['monthly_vitals.csv', 'monthly_vitals.parquet', 'monthly_vitals_public.csv']);
    const none = await runCli(['stats', '--out', join(dir, 'nothing')]);
    exits(none, 2);
    expect(none.json).toMatchObject({ status: 'error', error: { code: 'HCP_ERR_NO_SKETCHES', message: expect.stringMatching(/run process first/) } });
  });
});

describe('a rerun replaces the statistics', () => {
  it('a dataset whose rows are all rejected this time: its statistics hold the header only, not the previous run\'s rows', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    const vitals = csv(VITALS, 'H1,2024-01-05,P1,heart_rate,72,bpm');
    exits(await runBoth(dir, out, vitals, csv(LABS, 'H1,2024-01-05,P1,glucose,90,,mg/dL', 'H2,2024-01-05,P2,glucose,90,70-100,mg/dL')), 0);
    expect((await readCsvObjects(join(out, 'stats/monthly_labs.csv'))).map((x) => [x.hospital_id, x.n])).toEqual([['H1', '1'], ['H2', '1'], ['ALL', '2']]);
    const r = await runBoth(dir, out, vitals, csv(LABS, 'H1,2024-01-05,P1,glucose,abc,,mg/dL', 'H2,2024-01-05,P2,glucose,abc,70-100,mg/dL'));
    exits(r, 3);
    expect(r.json!.datasets.labs.rows).toEqual({ read: 2, accepted: 0, rejected: 2 });
    await expectHeaderOnlyStats(out, 'labs');
    expect((await readCsvObjects(join(out, 'stats/monthly_vitals.csv'))).map((x) => [x.hospital_id, x.n])).toEqual([['H1', '1'], ['ALL', '1']]);
  });
});

describe('a rerun from another path replaces the partitions; the ledger checks the files that produced them', () => {
  const vitals = csv(VITALS, 'H1,2024-01-05,P1,heart_rate,72,bpm', 'H2,2024-01-05,P2,heart_rate,80,bpm');
  const labs = csv(LABS, 'H1,2024-01-05,P1,glucose,90,,mg/dL', 'H2,2024-01-05,P2,glucose,90,70-100,mg/dL');
  type Line = { dataset: string; input: string; read: number; accepted: number; rejected: number; holds: boolean };
  const ledger = (out: string): Line[] => json(join(out, '_manifest.json')).ledger;

  it('run, then run on byte-identical copies elsewhere: exit 0, the ledger names the new files only, the same statistics', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    exits(await runBoth(dir, out, vitals, labs), 0);
    const stats = new Map(['vitals', 'labs'].flatMap(statsFiles).map((f) => [f, readFileSync(join(out, f))]));
    const day2 = join(dir, 'day2');
    mkdirSync(day2);
    const r = await runBoth(day2, out, vitals, labs);
    exits(r, 0);
    expect(r.json!.ledger).toEqual([
      { dataset: 'vitals', input: join(day2, 'vitals.csv'), read: 2, accepted: 2, rejected: 0, holds: true },
      { dataset: 'labs', input: join(day2, 'labs.csv'), read: 2, accepted: 2, rejected: 0, holds: true },
    ]);
    expect(ledger(out)).toEqual(r.json!.ledger);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(true);
    expect(json(join(out, 'quality/report.json')).inputs.map((i: { input: string }) => i.input)).toEqual([join(day2, 'vitals.csv'), join(day2, 'labs.csv')]);
    for (const [f, bytes] of stats) expect(readFileSync(join(out, f)).equals(bytes), f).toBe(true);
  });

  it('a later file that replaces one of two hospitals: each file is checked on the hospitals it still produced', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    const [a, b] = [join(dir, 'a.csv'), join(dir, 'b.csv')];
    writeFileSync(a, vitals);
    writeFileSync(b, csv(VITALS, 'H1,2024-01-05,P1,heart_rate,72,bpm', 'H1,2024-01-06,P1,heart_rate,74,bpm', 'H1,2024-01-07,P1,heart_rate,x,bpm'));
    for (const input of [a, b]) exits(await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', out, ...OPTS]), 0);
    exits(await runCli(['stats', '--out', out]), 0);
    const r = await runCli(['report', '--out', out, '--max-reject-rate', '0.5']);
    exits(r, 0);
    expect([...r.json!.ledger].sort((x: Line, y: Line) => (x.input < y.input ? -1 : 1))).toEqual([
      { dataset: 'vitals', input: a, read: 1, accepted: 1, rejected: 0, holds: true },
      { dataset: 'vitals', input: b, read: 3, accepted: 2, rejected: 1, holds: true },
    ]);
    const inputs = json(join(out, 'quality/report.json')).inputs;
    expect(inputs.map((i: { input: string; superseded_hospitals: string[] }) => [i.input, i.superseded_hospitals]).sort()).toEqual([[a, ['H1']], [b, []]]);
  });

  it('the same path with a hospital fewer: the hospital left from the earlier version is its own ledger line', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    exits(await runBoth(dir, out, vitals, labs), 0);
    const r = await runBoth(dir, out, csv(VITALS, 'H1,2024-01-05,P1,heart_rate,72,bpm'), labs);
    exits(r, 0);
    expect(r.json!.ledger.filter((l: Line) => l.dataset === 'vitals')).toEqual([
      { dataset: 'vitals', input: join(dir, 'vitals.csv'), read: 1, accepted: 1, rejected: 0, holds: true },
      { dataset: 'vitals', input: join(dir, 'vitals.csv'), read: 1, accepted: 1, rejected: 0, holds: true },
    ]);
  });

  it('hospital partition files processed at the same time into one directory, then one rerun from another landing directory', async () => {
    const dir = tempDir('hcp-rerun-');
    const out = join(dir, 'out');
    const landing = (name: string) => {
      const d = join(dir, name, 'vitals');
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'hospital_id=H1.csv'), csv(VITALS, 'H1,2024-01-05,P1,heart_rate,72,bpm'));
      writeFileSync(join(d, 'hospital_id=H2.csv'), csv(VITALS, 'H2,2024-01-05,P2,heart_rate,80,bpm', 'H2,2024-01-06,P2,heart_rate,81,bpm'));
      return d;
    };
    const [d1, d2] = [landing('day1'), landing('day2')];
    const proc = (d: string, h: string) => runCli(['process', '--dataset', 'vitals', '--input', join(d, `hospital_id=${h}.csv`), '--out', out, '--period', '2024-01', ...OPTS]);
    for (const r of await Promise.all([proc(d1, 'H1'), proc(d1, 'H2')])) exits(r, 0);
    exits(await proc(d2, 'H2'), 0);
    exits(await runCli(['stats', '--out', out]), 0);
    const r = await runCli(['report', '--out', out]);
    exits(r, 0);
    expect(r.json!.ledger).toEqual([
      { dataset: 'vitals', input: join(d1, 'hospital_id=H1.csv'), read: 1, accepted: 1, rejected: 0, holds: true },
      { dataset: 'vitals', input: join(d2, 'hospital_id=H2.csv'), read: 2, accepted: 2, rejected: 0, holds: true },
    ]);
  });
});
