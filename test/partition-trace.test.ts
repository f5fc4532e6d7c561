/**
 * The DAG's path (`partition`, then one `process` per hospital file) gives the
 * same quarantine as one `process` of the monthly file, down to `source_file`
 * and `line_number` (SPEC §5: the physical line where the record starts, header
 * = line 1): an analyst tracing a reject goes back to the hospital's delivery,
 * not to a split file that only exists inside the pipeline.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

  // The map no longer fits its split file, or cannot be read: a warning, and the split file's own lines.
  it.each<[string, (h1: string) => void, RegExp, string[]]>([
    ['changed since partition (a row appended)', (h1: string) => appendFileSync(h1, 'H1,2024-03-02,P2,heart_rate,999,bpm\n'), /line map .* is not used \(it is for a file of/, ['2', '3']],
    ['edited in place to the same size (only its modification time differs)', (h1: string) => {
      writeFileSync(h1, readFileSync(h1, 'utf8').replace('999', '998'));
      utimesSync(h1, new Date(2020, 0, 1), new Date(2020, 0, 1));
    }, /is not used \(it is for a file of/, ['2']],
    ['whose map cannot be read (a directory in its place)', (h1: string) => {
      const map = join(dirname(dirname(h1)), '_lines', 'vitals', 'hospital_id=H1.csv.lines');
      rmSync(map);
      mkdirSync(map);
    }, /is not used \(.*EISDIR/, ['2']],
  ])('a split file %s: a warning, its own lines, exit 0', async (_name, change, warning, lines) => {
    const dir = tempDir('hcp-trace-');
    const input = join(dir, 'vitals.csv');
    writeFileSync(input, `${HEADER}\nH2,2024-03-01,P1,heart_rate,72,bpm\nH1,2024-03-01,P1,heart_rate,999,bpm\n`);
    const p = await runCli(['partition', '--dataset', 'vitals', '--input', input, '--landing', join(dir, 'landing')]);
    expect(p.code, describeRun(p)).toBe(0);
    const h1 = join(dir, 'landing', 'vitals', 'hospital_id=H1.csv');
    change(h1);
    const out = join(dir, 'out');
    const q = await runCli(['process', '--dataset', 'vitals', '--input', h1, '--out', out, ...OPTS]);
    expect(q.code, describeRun(q)).toBe(0);
    expect(q.stderr).toMatch(warning);
    expect((await readQuarantine(out, 'vitals')).map((r) => [r.source_file, r.line_number])).toEqual(lines.map((l) => [h1, l]));
  }, 60_000);

  it('a split file named relative to its own folder finds its map; rejects name the monthly file by its absolute path', async () => {
    const dir = tempDir('hcp-trace-');
    writeFileSync(join(dir, 'vitals.csv'), `${HEADER}\nH2,2024-03-01,P1,heart_rate,72,bpm\nH1,2024-03-01,P1,heart_rate,999,bpm\n`);
    // partition given a relative input, process run from inside the landing folder.
    const p = await runCli(['partition', '--dataset', 'vitals', '--input', 'vitals.csv', '--landing', 'landing'], { cwd: dir });
    expect(p.code, describeRun(p)).toBe(0);
    const out = join(dir, 'out');
    const q = await runCli(['process', '--dataset', 'vitals', '--input', 'hospital_id=H1.csv', '--out', out, ...OPTS], { cwd: join(dir, 'landing', 'vitals') });
    expect(q.code, describeRun(q)).toBe(0);
    expect((await readQuarantine(out, 'vitals')).map((r) => [r.source_file, r.line_number])).toEqual([[realpathSync(join(dir, 'vitals.csv')), '3']]);
  }, 60_000);

  // The cutter gives up on a quote still open after --max-record-bytes at a chunk's end, and cuts its record at its
  // line (src/parse/cutter.ts): decided on the bytes around the record, which are not the same in the split file.
  const other = Array.from({ length: 80 }, (_, i) => `H2,2024-03-02,Q${i},heart_rate,72,bpm`);
  it.each([
    // Given up on in the monthly file (80 H2 rows, 3 KB, follow each); in H1's split file nothing lies between them,
    // so the first quote ran on to the second: two rows read as one, silently.
    ['two unterminated quotes of one hospital', [HEADER, 'H1,2024-03-01,P1,heart_rate,72,"bpm', ...other, 'H1,2024-03-03,P2,heart_rate,72,bpm', 'H1,2024-03-04,P3,heart_rate,72,"bpm', ...other], 1024],
    // Held whole in one chunk of the monthly file; in H1's split file it falls across a chunk's end, 1.5 KB open.
    [
      'a quoted record longer than --max-record-bytes',
      [HEADER, ...Array.from({ length: 70 }, (_, i) => `H1,2024-03-01,P${100 + i},heart_rate,72,bpm`), ...other.slice(0, 40), `H1,2024-03-02,"P${'\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'.repeat(30)}",heart_rate,72,bpm`, 'H1,2024-03-03,P3,heart_rate,72,bpm'],
      4096,
    ],
    // The file ends inside a quote, without a LF: the split file must not add one inside that quote.
    ['an unterminated quote in the last record, no final LF', [HEADER, ...other.slice(0, 5), 'H1,2024-03-01,P1,heart_rate,72,bpm', 'H2,2024-03-01,P7,heart_rate,72,"bpm'], 1024, ''],
  ])('%s: the split file is read into the records partition wrote, the same rejects', async (_, lines, chunk, end = '\n') => {
    const dir = tempDir('hcp-trace-');
    const input = join(dir, 'vitals.csv');
    writeFileSync(input, (lines as string[]).join('\n') + end);
    const small = ['--chunk-size', String(chunk), '--max-record-bytes', '1024'];
    const opts = [...OPTS.filter((o, i) => o !== '--chunk-size' && OPTS[i - 1] !== '--chunk-size'), ...small];
    const direct = join(dir, 'direct');
    const r = await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', direct, ...opts]);
    expect(r.code, describeRun(r)).toBe(0);
    const p = await runCli(['partition', '--dataset', 'vitals', '--input', input, '--landing', join(dir, 'landing'), ...small]);
    expect(p.code, describeRun(p)).toBe(0);
    expect(p.json!.rows_read).toBe(r.json!.rows.read);
    const viaDag = join(dir, 'dag');
    for (const part of p.json!.partitions as { path: string }[]) {
      const q = await runCli(['process', '--dataset', 'vitals', '--input', part.path, '--out', viaDag, ...opts]);
      expect(q.code, describeRun(q)).toBe(0);
    }
    const key = (x: Record<string, string>) => JSON.stringify(x);
    const want = (await readQuarantine(direct, 'vitals')).map(key).sort();
    expect(want.length).toBeGreaterThan(0);
    expect((await readQuarantine(viaDag, 'vitals')).map(key).sort()).toEqual(want);
  }, 60_000);
});
