/**
 * The DAG's path (`partition`, then one `process` per hospital file) gives the
 * same quarantine as one `process` of the monthly file, down to `source_file`
 * and `line_number` (SPEC §5: the physical line where the record starts, header
 * = line 1): an analyst tracing a reject goes back to the hospital's delivery,
 * not to a split file that only exists inside the pipeline.
 */
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRun, readQuarantine, removeTempDirs, runCli, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const HEADER = 'hospital_id,measurement_date,patient_id,vital_type,value,unit';
const OPTS = ['--as-of', '2025-01-01', '--workers', '1', '--chunk-size', '1024', '--no-progress'];

/** A monthly file with what deliveries hold: CRLF, a BOM, quoted newlines and commas, blank lines, bad IDs and field counts, invalid UTF-8, duplicates far apart, no final newline. */
function monthly(): Buffer {
  const rows: string[] = [];
  for (let i = 0; i < 120; i++) {
    const h = ['H1', 'H2', 'H3'][i % 3];
    if (i % 17 === 0) rows.push(`${h},2024-03-${String(1 + (i % 28)).padStart(2, '0')},"P${i}\nx",heart_rate,72,bpm`);
    else if (i % 13 === 0) rows.push(`${h},2024-03-01,P${i},"heart,rate",72,bpm`);
    else if (i % 11 === 0) rows.push('', '');
    else if (i % 19 === 0) rows.push(`bad id,2024-03-01,P${i},heart_rate,72,bpm`);
    else if (i % 23 === 0) rows.push(`${h},2024-03-01,P${i},heart_rate,72`);
    else if (i % 29 === 0) rows.push(`${h},2024-03-01,P1,heart_rate,72,bpm`); // a copy of the H-row of P1, far below it
    else rows.push(`${h},2024-03-${String(1 + (i % 28)).padStart(2, '0')},P${i},heart_rate,${i % 7 === 0 ? 999 : 72},bpm`);
  }
  const text = Buffer.from('\uFEFF' + [HEADER, ...rows].join('\r\n'), 'utf8');
  // A record whose patient_id is not UTF-8, in the middle.
  return Buffer.concat([text.subarray(0, 2000), Buffer.from('\r\nH2,2024-03-02,P\xff9,heart_rate,72,bpm', 'latin1'), text.subarray(2000).subarray(text.subarray(2000).indexOf('\r\n'))]);
}

describe('partition + process per hospital = process of the monthly file', () => {
  it('the same rejects: hospital, reason codes, fields, and source_file and line_number in the monthly file', async () => {
    const dir = tempDir('hcp-trace-');
    const input = join(dir, 'vitals.csv');
    writeFileSync(input, monthly());
    const direct = join(dir, 'direct');
    const r = await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', direct, ...OPTS]);
    expect(r.code, describeRun(r)).toBe(0);

    const landing = join(dir, 'landing');
    const p = await runCli(['partition', '--dataset', 'vitals', '--input', input, '--landing', landing, '--chunk-size', '1024']);
    expect(p.code, describeRun(p)).toBe(0);
    const viaDag = join(dir, 'dag');
    for (const part of p.json!.partitions as { path: string }[]) {
      const q = await runCli(['process', '--dataset', 'vitals', '--input', part.path, '--out', viaDag, ...OPTS]);
      expect(q.code, describeRun(q)).toBe(0);
    }
    expect(readdirSync(join(landing, 'vitals')).filter((f) => f.endsWith('.csv')).length).toBeGreaterThanOrEqual(4);

    const key = (x: Record<string, string>) => JSON.stringify(x);
    const want = (await readQuarantine(direct, 'vitals')).map(key).sort();
    const got = (await readQuarantine(viaDag, 'vitals')).map(key).sort();
    expect(want.length).toBeGreaterThan(20);
    expect(want.some((x) => x.includes('duplicate.exact'))).toBe(true);
    expect(want.some((x) => x.includes('"partition":"__invalid__"'))).toBe(true);
    expect(got).toEqual(want);
  }, 60_000);

  it('a split file changed since partition: its map no longer fits, a warning, and its own lines', async () => {
    const dir = tempDir('hcp-trace-');
    const input = join(dir, 'vitals.csv');
    writeFileSync(input, `${HEADER}\nH2,2024-03-01,P1,heart_rate,72,bpm\nH1,2024-03-01,P1,heart_rate,999,bpm\n`);
    const p = await runCli(['partition', '--dataset', 'vitals', '--input', input, '--landing', join(dir, 'landing')]);
    expect(p.code, describeRun(p)).toBe(0);
    const h1 = join(dir, 'landing', 'vitals', 'hospital_id=H1.csv');
    appendFileSync(h1, 'H1,2024-03-02,P2,heart_rate,999,bpm\n');
    const out = join(dir, 'out');
    const q = await runCli(['process', '--dataset', 'vitals', '--input', h1, '--out', out, ...OPTS]);
    expect(q.code, describeRun(q)).toBe(0);
    expect(q.stderr).toMatch(/line map is for a file of/);
    const rejects = await readQuarantine(out, 'vitals');
    expect(rejects.map((r) => [r.source_file, r.line_number])).toEqual([[h1, '2'], [h1, '3']]);
  }, 60_000);

  it('records with unterminated quotes that the split file would read together: the ledger fails (exit 1), no silent loss', async () => {
    // In the monthly file, each unterminated quote is given up after --max-record-bytes and cut at its line;
    // in H1's split file nothing lies between the two, so the first quote runs on to the second.
    const other = Array.from({ length: 80 }, (_, i) => `H2,2024-03-02,Q${i},heart_rate,72,bpm`);
    const text = [HEADER, 'H1,2024-03-01,P1,heart_rate,72,"bpm', ...other, 'H1,2024-03-03,P2,heart_rate,72,bpm', 'H1,2024-03-04,P3,heart_rate,72,"bpm', ...other].join('\n') + '\n';
    const dir = tempDir('hcp-trace-');
    const input = join(dir, 'vitals.csv');
    writeFileSync(input, text);
    const small = ['--chunk-size', '1024', '--max-record-bytes', '1024'];
    const direct = await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', join(dir, 'direct'), ...OPTS, ...small]);
    expect(direct.code, describeRun(direct)).toBe(0);
    expect(direct.json!.rows.read).toBe(163);
    const p = await runCli(['partition', '--dataset', 'vitals', '--input', input, '--landing', join(dir, 'landing'), ...small]);
    expect(p.code, describeRun(p)).toBe(0);
    const h1 = (p.json!.partitions as { hospital_id: string; path: string; rows: number }[]).find((x) => x.hospital_id === 'H1')!;
    expect(h1.rows).toBe(3);
    const q = await runCli(['process', '--dataset', 'vitals', '--input', h1.path, '--out', join(dir, 'dag'), ...OPTS, ...small]);
    expect(q.code, describeRun(q)).toBe(1);
    expect(q.json?.error?.code ?? q.stderr).toMatch(/HCP_ERR_LEDGER|Ledger mismatch/);
  }, 60_000);
});
