/**
 * Reruns and runs without rows, through the CLI (SPEC §1, §5): a rerun of a
 * partition replaces what the previous run wrote for it (curated data,
 * quarantine, sketches, statistics, manifests), from whatever path the input
 * now has; and input without a single accepted row is a valid run whose
 * statistics files hold the header only, the gates deciding the exit code.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { STAT_COLUMNS } from '../src/sinks/stats.js';
import { type CliResult, describeRun, listFiles, query, readCsvObjects, runCli, sqlStr, tempDir } from './helpers.js';
import { removeTempDirs } from './helpers.js';

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
