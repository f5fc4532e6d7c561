/**
 * The `partition` command (src/commands/partition.ts): a combined file split
 * into one landing file per hospital, every record kept byte for byte, and
 * no value but a valid hospital_id of a well-formed record ever naming a file.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionFile } from '../src/commands/partition.js';
import { startFakePushgateway } from './fake-pushgateway.js';
import { DATA, describeRun, removeTempDirs, runCli, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const HEADER = 'hospital_id,measurement_date,patient_id,vital_type,value,unit';

/** Splits `text` (header first) into landing files; returns each file's data lines by file name. */
async function split(text: string, chunkSize = 1 << 16): Promise<Map<string, string[]>> {
  const dir = tempDir('hcp-partition-');
  const input = join(dir, 'combined.csv');
  writeFileSync(input, text);
  const landing = join(dir, 'landing');
  await partitionFile('vitals', input, landing, chunkSize, 1 << 20);
  const files = new Map<string, string[]>();
  for (const f of readdirSync(join(landing, 'vitals')).sort()) {
    const lines = readFileSync(join(landing, 'vitals', f), 'utf8').split('\n');
    expect(lines[0]).toBe(HEADER);
    files.set(f, lines.slice(1, -1));
  }
  return files;
}

describe('partition: malformed records are not attributed to a hospital', () => {
  it('a short record whose hospital_id column holds a patient ID or a date goes to hospital_id=__invalid__.csv', async () => {
    const files = await split(`${HEADER}\nH1,2024-01-05,P1,heart_rate,72,bpm\nMRN0012345,heart_rate,72,bpm\n2024-01-05,MRN0099999,heart_rate,72,bpm\nH2,2024-01-05,P1,heart_rate,72,bpm,extra\n`);
    expect([...files.keys()]).toEqual(['hospital_id=H1.csv', 'hospital_id=__invalid__.csv']);
    expect(files.get('hospital_id=__invalid__.csv')).toEqual(['MRN0012345,heart_rate,72,bpm', '2024-01-05,MRN0099999,heart_rate,72,bpm', 'H2,2024-01-05,P1,heart_rate,72,bpm,extra']);
  });

  it('property: each record lands, in order, in the file of its hospital_id when it has six fields and a valid ID, else in __invalid__', async () => {
    // Unquoted tokens, so the expected split is a plain split on commas (an independent reading).
    // Padded and non-ASCII IDs too: an ID is read after trimming (U+00A0 is white space), the same text always to the same file.
    const token = fc.constantFrom('H1', 'H2', 'h-3_x', ' H1', 'H2 ', 'H1\u00a0', 'H\u00e9', 'MRN0012345', '2024-01-05', 'P1', 'heart_rate', '72', 'bpm', '', 'a/b', 'ALL', '__invalid__');
    const record = fc.array(token, { minLength: 1, maxLength: 8 }).map((fs) => fs.join(','));
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 30 }), fc.integer({ min: 16, max: 256 }), async (records, chunkSize) => {
        const data = records.filter((r) => r !== ''); // an empty line is a blank line, not a record
        const expected = new Map<string, string[]>();
        for (const r of data) {
          const f = r.split(',');
          const h = f[0].trim();
          const name = f.length === 6 && /^[A-Za-z0-9_-]{1,32}$/.test(h) && h !== 'ALL' && h !== '__invalid__' ? h : '__invalid__';
          const file = `hospital_id=${name}.csv`;
          expected.set(file, [...(expected.get(file) ?? []), r]);
        }
        const got = await split(`${HEADER}\n${data.join('\n')}\n`, chunkSize);
        expect(new Map([...got].sort(([a], [b]) => (a < b ? -1 : 1)))).toEqual(new Map([...expected].sort(([a], [b]) => (a < b ? -1 : 1))));
      }),
      { numRuns: 60 },
    );
  });
});

describe('partition: a hospital_id with bytes above 0x7f', () => {
  it('is read as UTF-8 in a valid UTF-8 record and as Latin-1 in another, whatever came before', async () => {
    const dir = tempDir('hcp-partition-');
    const input = join(dir, 'combined.csv');
    const nbsp = Buffer.from('H1\u00a0', 'utf8'); // H1 then U+00A0 (white space) in UTF-8: C2 A0
    const row = (tail: Buffer) => Buffer.concat([nbsp, Buffer.from(',2024-01-05,P1,heart_rate,72,'), tail, Buffer.from('\n')]);
    // The same hospital_id bytes twice: trimmed to H1 in the valid record; C2 read as 'Â' where a byte (FF) is not UTF-8.
    writeFileSync(input, Buffer.concat([Buffer.from(`${HEADER}\n`), row(Buffer.from('bpm')), row(Buffer.from([0x62, 0xff]))]));
    const landing = join(dir, 'landing');
    await partitionFile('vitals', input, landing, 1 << 16, 1 << 20);
    expect(readdirSync(join(landing, 'vitals')).sort()).toEqual(['hospital_id=H1.csv', 'hospital_id=__invalid__.csv']);
    expect(readFileSync(join(landing, 'vitals', 'hospital_id=__invalid__.csv')).subarray(HEADER.length + 1)).toEqual(row(Buffer.from([0x62, 0xff])));
  });
});

describe('partition: many distinct hospital_id fields', () => {
  it('past the fields it remembers, each record is still read on its own', async () => {
    const bad = Array.from({ length: 5000 }, (_, i) => `bad/${i},2024-01-05,P1,heart_rate,72,bpm`);
    const good = Array.from({ length: 50 }, (_, i) => `H${i % 3},2024-01-05,P${i},heart_rate,72,bpm`);
    const files = await split(`${HEADER}\n${[...bad, ...good, ' H1 ,2024-01-05,P9,heart_rate,72,bpm'].join('\n')}\n`);
    expect(files.get('hospital_id=__invalid__.csv')).toEqual(bad);
    for (const h of ['H0', 'H1', 'H2']) expect(files.get(`hospital_id=${h}.csv`)).toEqual([...good.filter((r) => r.startsWith(`${h},`)), ...(h === 'H1' ? [' H1 ,2024-01-05,P9,heart_rate,72,bpm'] : [])]);
  });
});

describe('partition: metrics like every command (SPEC §6, §7)', () => {
  it('--metrics-file and --pushgateway get its stage time, the bytes it read and the records it split, in a group of its own', async () => {
    const dir = tempDir('hcp-partition-');
    const input = join(DATA, 'vitals_2024.csv');
    const prom = join(dir, 'partition.prom');
    const gateway = await startFakePushgateway();
    let rows = 0;
    try {
      const r = await runCli(['partition', '--dataset', 'vitals', '--input', input, '--landing', join(dir, 'landing'), '--metrics-file', prom, '--pushgateway', gateway.url]);
      expect(r.code, describeRun(r)).toBe(0);
      rows = r.json!.rows_read;
      expect(rows).toBeGreaterThan(0);
    } finally {
      await gateway.close();
    }
    const text = readFileSync(prom, 'utf8');
    const value = (series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1]);
    expect(value('hcp_stage_duration_seconds{stage="partition"}')).toBeGreaterThan(0);
    expect(value('hcp_bytes_read_total{dataset="vitals"}')).toBe(statSync(input).size);
    expect(value('hcp_partition_rows_total{dataset="vitals"}')).toBe(rows);
    expect(text).not.toMatch(/^hcp_rows_total\{/m); // no row passed or failed a rule here

    // Its own group (it owns no hospital's rows): replaced by the next partition of the dataset, never touching process's.
    expect(gateway.requests.map((p) => `${p.method} ${p.path}`)).toEqual(['PUT /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/ALL/command/partition']);
    const pushed = Object.fromEntries(gateway.samples().filter((s) => s.name.startsWith('hcp_')).map((s) => [s.name, s]));
    expect(pushed.hcp_stage_duration_seconds.labels).toEqual({ job: 'healthcare_pipeline', dataset: 'vitals', hospital_id: 'ALL', command: 'partition', stage: 'partition' });
    expect(pushed.hcp_bytes_read_total.value).toBe(statSync(input).size);
    expect(pushed.hcp_partition_rows_total.value).toBe(rows);
  });
});
