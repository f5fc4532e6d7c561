/**
 * End to end: `run` on the bundled sample data, checked against independent
 * readers — DuckDB for the Parquet and the statistics, fast-csv and a small
 * line-aware reader for the inputs and the quarantine — and the labelled
 * defects of data/*.labels.csv.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RULES } from '../src/rules/codes.js';
import {
  csvRecords,
  curatedScan,
  DATA,
  describeRun,
  expectSafePublicStats,
  fastCsv,
  isDir,
  listFiles,
  query,
  rankError,
  readCsvObjects,
  readQuarantine,
  removeTempDirs,
  runCli,
  sqlStr,
  tempDir,
  close,
  exactMoments,
  prng,
  TEST_KEY,
  type CliResult,
} from './helpers.js';

const DATASETS = [
  { dataset: 'vitals', file: 'vitals_2024.csv', date: 'measurement_date', type: 'vital_type', value: 'value' },
  { dataset: 'labs', file: 'lab_results_2024.csv', date: 'test_date', type: 'test_type', value: 'result_value' },
] as const;

let out: string;
let run: CliResult;

beforeAll(async () => {
  out = join(tempDir('hcp-e2e-'), 'out');
  run = await runCli(['run', '--out', out, '--no-progress'], { timeoutMs: 120_000 });
}, 180_000);

afterAll(removeTempDirs);

const ok = () => expect(run.code, describeRun(run)).toBe(0);

/** The input's data records with their physical line (header excluded), read independently. */
function inputRecords(file: string) {
  const recs = csvRecords(readFileSync(join(DATA, file), 'utf8'));
  return { header: recs[0].fields, rows: recs.slice(1) };
}

describe('run on the bundled data', () => {
  it('exits 0 with a JSON summary on the last stdout line', () => {
    ok();
    expect(run.json).toMatchObject({ command: 'run', status: 'ok', exit_code: 0, demo_key: false });
    expect(run.json!.gates.passed).toBe(true);
  });

  it('says in the summary and the log where the time went: phases one after another, CPU by thread', () => {
    ok();
    for (const { dataset } of DATASETS) {
      const s = run.json!.datasets[dataset];
      const phases = s.phases_ms as Record<string, number>;
      expect(Object.keys(phases)).toEqual(['chunks', 'duplicates', 'encode', 'commit']);
      for (const ms of Object.values(phases)) expect(ms).toBeGreaterThanOrEqual(0);
      // Consecutive parts of the file's run that add up to the whole (each rounded to 0.1 ms).
      expect(Math.abs(Object.values(phases).reduce((a, b) => a + b, 0) - s.duration_ms)).toBeLessThanOrEqual(0.5);
      // Linux reports thread times (elsewhere the summary leaves cpu_ms out): the coordinator and the workers both worked on every file.
      if (process.platform !== 'linux') continue;
      const cpu = s.cpu_ms as Record<string, number>;
      expect(Object.keys(cpu)).toEqual(['coordinator', 'workers', 'background']);
      expect(cpu.coordinator).toBeGreaterThan(0);
      expect(cpu.workers).toBeGreaterThan(0);
      expect(cpu.background).toBeGreaterThanOrEqual(0);
      // The human log says the same, in seconds.
      const sec = (ms: number) => (ms / 1000).toFixed(1);
      expect(run.stderr).toContain(
        `${dataset}: wall s: chunks ${sec(phases.chunks)}, duplicates ${sec(phases.duplicates)}, encode ${sec(phases.encode)}, commit ${sec(phases.commit)}; ` +
          `CPU s: coordinator ${sec(cpu.coordinator)}, workers ${sec(cpu.workers)}, background ${sec(cpu.background)}`,
      );
    }
  });

  it('writes the SPEC §5 layout', () => {
    ok();
    const files = listFiles(out);
    for (const { dataset } of DATASETS) {
      const curated = files.filter((f) => f.startsWith(`curated/${dataset}/`));
      expect(curated.length).toBeGreaterThan(0);
      for (const f of curated) expect(f).toMatch(new RegExp(`^curated/${dataset}/hospital_id=[A-Za-z0-9_-]{1,32}/month=\\d{4}-\\d{2}/part-[^/]*\\.parquet$`));
      const hospitals = [...new Set(curated.map((f) => f.split('/')[2]))];
      for (const h of hospitals) {
        expect(files).toContain(`quarantine/${dataset}/${h}/rejects.csv`);
        expect(files).toContain(`sketches/${dataset}/${h}.json`);
      }
      for (const f of files.filter((x) => x.startsWith(`quarantine/${dataset}/`))) expect(f).toMatch(/^quarantine\/\w+\/hospital_id=[^/]+\/rejects\.csv$/);
      for (const s of [`stats/monthly_${dataset}.parquet`, `stats/monthly_${dataset}.csv`, `stats/monthly_${dataset}_public.csv`]) expect(files).toContain(s);
    }
    for (const f of ['quality/report.json', 'quality/report.html', '_manifest.json', '_SUCCESS']) expect(files).toContain(f);
    // Nothing left over from staging, locks or atomic renames.
    expect(files.filter((f) => /(^|\/)_staging\/|(^|\/)_locks\/|\.tmp-|\.old-/.test(f))).toEqual([]);
    expect(isDir(join(out, '_staging')) || isDir(join(out, '_locks'))).toBe(false);
  });

  it('sketch files are versioned, mergeable state', () => {
    ok();
    for (const f of listFiles(join(out, 'sketches'))) {
      const s = JSON.parse(readFileSync(join(out, 'sketches', f), 'utf8'));
      expect(s).toMatchObject({ version: expect.any(Number), dataset: f.split('/')[0] });
      expect(`hospital_id=${s.hospital_id}.json`).toBe(f.split('/')[1]);
    }
  });
});

describe.each(DATASETS)('$dataset', ({ dataset, file, date, type }) => {
  it('ledger: rows read = curated + quarantined, and rows read = the records in the input', async () => {
    ok();
    const { rows } = inputRecords(file);
    const viaFastCsv = (await fastCsv(readFileSync(join(DATA, file), 'utf8'))).length - 1;
    expect(rows.length).toBe(viaFastCsv);
    const curated = (await query(`SELECT count(*) AS n FROM ${curatedScan(out, dataset)}`))[0].n;
    const rejected = (await readQuarantine(out, dataset)).length;
    expect(curated + rejected).toBe(rows.length);
    const manifest = JSON.parse(readFileSync(join(out, '_manifest.json'), 'utf8'));
    const entry = manifest.ledger.find((l: { dataset: string }) => l.dataset === dataset);
    expect(entry).toMatchObject({ read: rows.length, accepted: curated, rejected, holds: true });
    expect(run.json!.datasets[dataset].rows).toEqual({ read: rows.length, accepted: curated, rejected });
  });

  it('quarantine = exactly the labelled defective lines, each with its expected codes', async () => {
    ok();
    const labels = await readCsvObjects(join(DATA, file.replace(/\.csv$/, '.labels.csv')));
    const expected = new Map(labels.map((l) => [Number(l.line_number), l.expected_codes.split(';').filter(Boolean)]));
    const q = await readQuarantine(out, dataset);
    const got = new Map(q.map((r) => [Number(r.line_number), r.reason_codes.split(';')]));
    expect(got.size).toBe(q.length); // one reject per line
    expect([...got.keys()].sort((a, b) => a - b)).toEqual([...expected.keys()].sort((a, b) => a - b));
    for (const [line, codes] of expected) {
      for (const c of codes) expect(got.get(line), `line ${line}`).toContain(c);
      for (const c of got.get(line)!) expect(Object.keys(RULES)).toContain(c);
    }
  });

  it('quarantine rows hold the source file, the record as read and the right partition', async () => {
    ok();
    const { header, rows } = inputRecords(file);
    const byLine = new Map(rows.map((r) => [r.line, r.fields]));
    for (const r of await readQuarantine(out, dataset)) {
      expect(r.source_file).toBe(`data/${file}`);
      const fields = byLine.get(Number(r.line_number))!;
      expect(fields, `line ${r.line_number}`).toBeDefined();
      if (fields.length === header.length) {
        header.forEach((h, i) => expect(r[h], `line ${r.line_number} ${h}`).toBe(fields[i]));
        const h = fields[0].trim();
        expect(r.partition).toBe(/^[A-Za-z0-9_-]{1,32}$/.test(h) ? h : '__invalid__');
      } else {
        expect(r.reason_codes).toBe('row.field_count');
        expect(r.raw_record).toBe(readFileSync(join(DATA, file), 'utf8').split('\n')[Number(r.line_number) - 1].replace(/\r$/, ''));
      }
    }
  });

  it('no unlabelled row is rejected, and every curated row traces back to one (hospital, date, type, source value) of the input', async () => {
    ok();
    const { rows } = inputRecords(file);
    const labelled = new Set((await readCsvObjects(join(DATA, file.replace(/\.csv$/, '.labels.csv')))).map((l) => Number(l.line_number)));
    const clean = rows.filter((r) => !labelled.has(r.line));
    const key = (h: string, d: string, t: string, v: string, u: string) => [h, d, t, v, u].join('|');
    const counts = new Map<string, number>();
    const idx = dataset === 'vitals' ? [0, 1, 3, 4, 5] : [0, 1, 3, 4, 6];
    for (const r of clean) {
      const k = key(...(idx.map((i) => r.fields[i].trim()) as [string, string, string, string, string]));
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const curated = await query(`SELECT hospital_id, strftime(${date}, '%Y-%m-%d') AS d, ${type} AS t, source_value, source_unit FROM ${curatedScan(out, dataset)}`);
    expect(curated.length).toBe(clean.length);
    for (const c of curated) {
      const k = key(c.hospital_id, c.d, c.t, c.source_value, c.source_unit);
      expect(counts.get(k) ?? 0, k).toBeGreaterThan(0);
      counts.set(k, counts.get(k)! - 1);
    }
  });

  it('patient_key = first 32 hex chars of HMAC-SHA256(HCP_PSEUDONYM_KEY, "hospital_id|patient_id")', async () => {
    ok();
    const { rows } = inputRecords(file);
    const labelled = new Set((await readCsvObjects(join(DATA, file.replace(/\.csv$/, '.labels.csv')))).map((l) => Number(l.line_number)));
    const want = new Set(
      rows
        .filter((r) => !labelled.has(r.line))
        .map((r) => {
          const h = r.fields[0].trim();
          return `${h}|${createHmac('sha256', TEST_KEY).update(`${h}|${r.fields[2].trim()}`).digest('hex').slice(0, 32)}`;
        }),
    );
    const got = await query(`SELECT DISTINCT hospital_id || '|' || patient_key AS k FROM ${curatedScan(out, dataset)}`);
    expect(new Set(got.map((g) => g.k))).toEqual(want);
  });

  it('curated rows sit in the partition directory of their hospital and month', async () => {
    ok();
    const bad = await query(`
      SELECT filename, hospital_id, month FROM ${curatedScan(out, dataset)}
      WHERE filename NOT LIKE '%/hospital_id=' || hospital_id || '/month=' || month || '/part-%'
         OR month <> strftime(${date}, '%Y-%m')`);
    expect(bad).toEqual([]);
  });

  it('patient keys are 32 hex chars and unit is the canonical unit', async () => {
    ok();
    const bad = await query(`SELECT * FROM ${curatedScan(out, dataset)} WHERE NOT regexp_full_match(patient_key, '[0-9a-f]{32}')`);
    expect(bad).toEqual([]);
    const units = await query(`SELECT DISTINCT ${type} AS t, unit FROM ${curatedScan(out, dataset)} ORDER BY 1`);
    const canonical: Record<string, string> = {
      heart_rate: 'bpm', blood_pressure_systolic: 'mmHg', blood_pressure_diastolic: 'mmHg', respiratory_rate: 'breaths/min',
      temperature: 'celsius', oxygen_saturation: '%', weight: 'kg', height: 'cm',
      glucose: 'mg/dL', cholesterol: 'mg/dL', hba1c: '%', creatinine: 'mg/dL', hemoglobin: 'g/dL', sodium: 'mmol/L', potassium: 'mmol/L',
    };
    for (const u of units) expect(u.unit, u.t).toBe(canonical[u.t]);
  });
});

describe('curated values carry the unit conversions (recomputed in SQL)', () => {
  // Independent of src/registry.ts: SPEC §2 written out again.
  const VITALS_SQL = `
    CASE
      WHEN vital_type = 'temperature' AND source_unit IN ('fahrenheit', 'F', '°F', '[degF]') THEN (CAST(source_value AS DOUBLE) - 32) * 5 / 9
      WHEN vital_type = 'weight' AND source_unit IN ('lb', '[lb_av]') THEN CAST(source_value AS DOUBLE) * 0.45359237
      WHEN vital_type = 'height' AND source_unit IN ('in', '[in_i]') THEN CAST(source_value AS DOUBLE) * 2.54
      WHEN vital_type = 'height' AND source_unit = 'm' THEN CAST(source_value AS DOUBLE) * 100
      ELSE CAST(source_value AS DOUBLE)
    END`;
  const LABS_SQL = `
    CASE
      WHEN test_type = 'glucose' AND source_unit = 'mmol/L' THEN CAST(source_value AS DOUBLE) * 18.016
      WHEN test_type = 'cholesterol' AND source_unit = 'mmol/L' THEN CAST(source_value AS DOUBLE) * 38.67
      WHEN test_type = 'hba1c' AND source_unit = 'mmol/mol' THEN CAST(source_value AS DOUBLE) / 10.929 + 2.15
      WHEN test_type = 'creatinine' AND source_unit IN ('umol/L', 'µmol/L') THEN CAST(source_value AS DOUBLE) / 88.4
      WHEN test_type = 'hemoglobin' AND source_unit = 'g/L' THEN CAST(source_value AS DOUBLE) / 10
      ELSE CAST(source_value AS DOUBLE)
    END`;
  const ALLOWED = `
    (vital_type, source_unit) IN (
      ('heart_rate', 'bpm'), ('heart_rate', '/min'), ('heart_rate', 'beats/min'),
      ('blood_pressure_systolic', 'mmHg'), ('blood_pressure_systolic', 'mm[Hg]'),
      ('blood_pressure_diastolic', 'mmHg'), ('blood_pressure_diastolic', 'mm[Hg]'),
      ('respiratory_rate', 'breaths/min'), ('respiratory_rate', '/min'),
      ('temperature', 'celsius'), ('temperature', 'C'), ('temperature', '°C'), ('temperature', 'Cel'),
      ('temperature', 'fahrenheit'), ('temperature', 'F'), ('temperature', '°F'), ('temperature', '[degF]'),
      ('oxygen_saturation', '%'), ('weight', 'kg'), ('weight', 'lb'), ('weight', '[lb_av]'),
      ('height', 'cm'), ('height', 'in'), ('height', '[in_i]'), ('height', 'm'))
    OR lower(source_unit) = lower(unit)`;

  it.each([
    ['vitals', VITALS_SQL],
    ['labs', LABS_SQL],
  ])('%s', async (dataset, expr) => {
    ok();
    const rows = await query(`SELECT *, ${expr} AS expected FROM ${curatedScan(out, dataset)}`);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(close(r.value, r.expected, 1e-12, 1e-12), `${JSON.stringify(r)}`).toBe(true);
    // Several units really occur (the conversions are exercised, not just identity).
    const units = await query(`SELECT count(*) AS n FROM ${curatedScan(out, dataset)} WHERE lower(source_unit) <> lower(unit)`);
    expect(units[0].n).toBeGreaterThan(0);
  });

  it('vitals source units are allowed spellings', async () => {
    ok();
    expect(await query(`SELECT vital_type, source_unit FROM ${curatedScan(out, 'vitals')} WHERE NOT (${ALLOWED})`)).toEqual([]);
  });

  it('vitals flags follow the normal ranges (null for weight and height)', async () => {
    ok();
    const bad = await query(`
      WITH r(vital_type, lo, hi) AS (VALUES ('heart_rate', 60, 100), ('blood_pressure_systolic', 90, 120), ('blood_pressure_diastolic', 60, 80),
        ('respiratory_rate', 12, 20), ('temperature', 36.1, 37.8), ('oxygen_saturation', 95, 100))
      SELECT c.vital_type, c.value, c.flag FROM ${curatedScan(out, 'vitals')} c LEFT JOIN r USING (vital_type)
      WHERE c.flag IS DISTINCT FROM (CASE WHEN r.lo IS NULL THEN NULL WHEN c.value < r.lo THEN 'L' WHEN c.value > r.hi THEN 'H' ELSE 'N' END)`);
    expect(bad).toEqual([]);
  });

  it('labs flags follow the (converted) reference range', async () => {
    ok();
    const bad = await query(`
      SELECT test_type, value, ref_low, ref_high, flag FROM ${curatedScan(out, 'labs')}
      WHERE (flag = 'L' AND NOT (value <= ref_low))
         OR (flag = 'H' AND NOT (value >= ref_high))
         OR (flag = 'N' AND ((ref_low IS NOT NULL AND value < ref_low) OR (ref_high IS NOT NULL AND value > ref_high)))
         OR flag IS NULL OR (ref_low IS NULL AND ref_high IS NULL) OR ref_low > ref_high`);
    expect(bad).toEqual([]);
  });
});

interface Stat {
  dataset: string; hospital_id: string; month: string; measure: string; unit: string;
  n: number; n_patients: number; mean: number | null; stddev: number | null; min: number | null; max: number | null;
  p05: number | null; p25: number | null; p50: number | null; p75: number | null; p95: number | null; p99: number | null;
  n_low: number | null; n_high: number | null;
}
const QS = [['p05', 0.05], ['p25', 0.25], ['p50', 0.5], ['p75', 0.75], ['p95', 0.95], ['p99', 0.99]] as const;

describe.each(DATASETS)('statistics of $dataset against DuckDB', ({ dataset, type }) => {
  const statsPath = () => join(out, 'stats', `monthly_${dataset}.parquet`);
  const stats = () => query<Stat>(`SELECT * FROM read_parquet(${sqlStr(statsPath())}) ORDER BY month, measure, hospital_id`);
  const noRange = dataset === 'vitals' ? `${type} IN ('weight', 'height')` : 'false';

  const reference = (groupBy: string) =>
    query(`
      SELECT ${groupBy}, ${type} AS measure, count(*) AS n, count(DISTINCT hospital_id || '|' || patient_key) AS n_patients,
        min(value) AS min, max(value) AS max, avg(value) AS mean, stddev_samp(value) AS stddev,
        list(value ORDER BY value) AS vals,
        CASE WHEN bool_or(${noRange}) THEN NULL ELSE count(*) FILTER (WHERE flag = 'L') END AS n_low,
        CASE WHEN bool_or(${noRange}) THEN NULL ELSE count(*) FILTER (WHERE flag = 'H') END AS n_high
      FROM ${curatedScan(out, dataset)} GROUP BY ALL`);

  function compare(s: Stat, r: Record<string, any>) {
    const where = `${s.hospital_id} ${s.month} ${s.measure}`;
    expect(s.n, where).toBe(r.n);
    expect(s.n_patients, where).toBe(r.n_patients);
    expect(s.min, where).toBe(r.min);
    expect(s.max, where).toBe(r.max);
    expect(close(s.mean!, r.mean, 1e-9), `${where} mean ${s.mean} vs ${r.mean}`).toBe(true);
    if (r.n < 2) expect(s.stddev, where).toBeNull();
    else expect(close(s.stddev!, r.stddev, 1e-9, 1e-12 * Math.abs(r.mean)), `${where} stddev ${s.stddev} vs ${r.stddev}`).toBe(true);
    const vals = Float64Array.from(r.vals as number[]);
    for (const [col, p] of QS) expect(rankError(vals, s[col]!, p), `${where} ${col}`).toBeNull();
    expect(s.n_low, where).toBe(r.n_low);
    expect(s.n_high, where).toBe(r.n_high);
  }

  it('one row per (hospital, month, measure) with n, n_patients, min, max exact; mean, stddev within 1e-9; quantiles within rank 0.005', async () => {
    ok();
    const s = (await stats()).filter((x) => x.hospital_id !== 'ALL');
    const ref = await reference('hospital_id, month');
    const k = (x: { hospital_id: string; month: string; measure: string }) => `${x.hospital_id}|${x.month}|${x.measure}`;
    expect(s.map(k).sort()).toEqual(ref.map((r) => k(r as Stat)).sort());
    const byKey = new Map(ref.map((r) => [k(r as never), r]));
    for (const row of s) {
      expect(row.dataset).toBe(dataset);
      compare(row, byKey.get(k(row))!);
    }
  });

  it('ALL rollups equal the aggregate over every hospital; n_patients is the sum of the hospitals', async () => {
    ok();
    const all = await stats();
    const rollups = all.filter((x) => x.hospital_id === 'ALL');
    const ref = await reference(`'ALL' AS hospital_id, month`);
    const k = (x: { month: string; measure: string }) => `${x.month}|${x.measure}`;
    expect(rollups.map(k).sort()).toEqual(ref.map((r) => k(r as Stat)).sort());
    const byKey = new Map(ref.map((r) => [k(r as never), r]));
    for (const row of rollups) {
      compare(row, byKey.get(k(row))!);
      const parts = all.filter((x) => x.hospital_id !== 'ALL' && x.month === row.month && x.measure === row.measure);
      expect(row.n_patients).toBe(parts.reduce((a, b) => a + b.n_patients, 0));
      expect(row.n).toBe(parts.reduce((a, b) => a + b.n, 0));
    }
  });

  it('rows are sorted by month, measure, hospital (ALL last), and the CSV holds the same numbers as the Parquet', async () => {
    ok();
    const csv = await readCsvObjects(join(out, 'stats', `monthly_${dataset}.csv`));
    const pq = await query<Stat>(`SELECT * FROM read_parquet(${sqlStr(statsPath())})`);
    expect(csv.length).toBe(pq.length);
    const hk = (h: string) => (h === 'ALL' ? '\uffff' : h);
    for (let i = 0; i < pq.length; i++) {
      const a = pq[i];
      const c = csv[i];
      if (i > 0) {
        const b = pq[i - 1];
        expect([b.month, b.measure, hk(b.hospital_id)].join('\u0000') < [a.month, a.measure, hk(a.hospital_id)].join('\u0000')).toBe(true);
      }
      for (const [col, v] of Object.entries(a)) expect(c[col], `${i} ${col}`).toBe(v === null ? '' : String(v));
    }
  });

  it('the public CSV blanks every value but n_patients where n_patients < 11, and whatever would give those away', async () => {
    ok();
    const full = await readCsvObjects(join(out, 'stats', `monthly_${dataset}.csv`));
    const pub = await readCsvObjects(join(out, 'stats', `monthly_${dataset}_public.csv`));
    const { blank, shown } = expectSafePublicStats(full, pub, 11);
    expect(blank).toBeGreaterThan(0);
    // Some rows (ALL rows of 11 patients or more) keep their values.
    expect(pub.some((p) => p.n !== '')).toBe(true);
    expect(blank + shown).toBe(full.filter((f) => f.hospital_id !== 'ALL').length);
  });
});

describe('Parquet column types', () => {
  it.each([
    ['vitals', 'measurement_date'],
    ['labs', 'test_date'],
  ])('%s: DATE and DOUBLE in DuckDB', async (dataset, date) => {
    ok();
    const cols = await query(`DESCRIBE SELECT * FROM ${curatedScan(out, dataset).replace(', filename = true', '')}`);
    const type = Object.fromEntries(cols.map((c) => [c.column_name, c.column_type]));
    expect(type[date]).toBe('DATE');
    expect(type.value).toBe('DOUBLE');
    if (dataset === 'labs') expect([type.ref_low, type.ref_high]).toEqual(['DOUBLE', 'DOUBLE']);
    for (const c of ['hospital_id', 'patient_key', 'month', 'unit', 'source_value', 'source_unit', 'flag']) expect(type[c], c).toBe('VARCHAR');
    const stats = await query(`DESCRIBE SELECT * FROM read_parquet(${sqlStr(join(out, 'stats', `monthly_${dataset}.parquet`))})`);
    const st = Object.fromEntries(stats.map((c) => [c.column_name, c.column_type]));
    for (const c of ['n', 'n_patients', 'n_low', 'n_high']) expect(st[c], c).toBe('BIGINT');
    for (const c of ['mean', 'stddev', 'min', 'max', 'p05', 'p50', 'p99']) expect(st[c], c).toBe('DOUBLE');
  });

  it.each([
    ['vitals', 'measurement_date'],
    ['labs', 'test_date'],
  ])('%s: DATE (INT32) and DOUBLE in the Parquet schema read by hyparquet, and the same rows', async (dataset, date) => {
    ok();
    const parts = listFiles(join(out, 'curated', dataset));
    let rows = 0;
    for (const p of parts) {
      const b = readFileSync(join(out, 'curated', dataset, p));
      const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      const md = parquetMetadata(ab);
      const el = Object.fromEntries(md.schema.map((e) => [e.name, e]));
      expect(el[date].type).toBe('INT32');
      expect(el[date].converted_type === 'DATE' || (el[date].logical_type as { type?: string } | undefined)?.type === 'DATE').toBe(true);
      expect(el.value.type).toBe('DOUBLE');
      const objs = await parquetReadObjects({ file: ab });
      rows += objs.length;
      const [h, m] = p.split('/').map((x) => x.split('=')[1]);
      for (const o of objs) {
        expect(o.hospital_id).toBe(h);
        expect(o.month).toBe(m);
        expect((o[date] as Date).toISOString().slice(0, 7)).toBe(m);
        expect(typeof o.value).toBe('number');
      }
    }
    const n = (await query(`SELECT count(*) AS n FROM ${curatedScan(out, dataset)}`))[0].n;
    expect(rows).toBe(n);
  });
});

describe('privacy: no raw patient_id outside the quarantine', () => {
  let ids: string[] = [];
  let pattern: RegExp;

  beforeAll(() => {
    const set = new Set<string>();
    // Defect rows with shifted fields put measure names or units in patient_id: those are not IDs.
    const other = new Set<string>();
    for (const { file } of DATASETS) {
      const { header, rows } = inputRecords(file);
      const at = header.indexOf('patient_id');
      for (const r of rows) {
        const v = (r.fields[at] ?? '').trim();
        if (v.length >= 4) set.add(v);
        r.fields.forEach((f, i) => i !== at && other.add(f.trim()));
      }
    }
    for (const o of other) set.delete(o);
    ids = [...set].sort((a, b) => b.length - a.length);
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // Bounded so that digits inside numbers or hex keys do not count as hits.
    pattern = new RegExp(`(?<![A-Za-z0-9_.-])(?:${ids.map(esc).join('|')})(?![A-Za-z0-9_-])`);
  });

  const scan = (text: string) => pattern.exec(text)?.[0] ?? null;

  it('the search finds the IDs where they are allowed (quarantine): a positive control', () => {
    ok();
    expect(ids.length).toBeGreaterThan(100);
    const q = listFiles(join(out, 'quarantine')).map((f) => readFileSync(join(out, 'quarantine', f), 'utf8'));
    expect(q.some((t) => scan(t) !== null)).toBe(true);
  });

  it('no ID in any output file but the quarantine (raw bytes)', () => {
    ok();
    for (const f of listFiles(out).filter((x) => !x.startsWith('quarantine/'))) {
      const text = readFileSync(join(out, f)).toString(f.endsWith('.parquet') ? 'latin1' : 'utf8');
      expect(scan(text), f).toBeNull();
    }
  });

  it('no ID in the decoded Parquet values (curated and stats)', async () => {
    ok();
    for (const f of listFiles(out).filter((x) => x.endsWith('.parquet'))) {
      const b = readFileSync(join(out, f));
      const objs = await parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer });
      for (const o of objs) for (const v of Object.values(o)) if (typeof v === 'string') expect(scan(v), `${f}: ${v}`).toBeNull();
    }
  });

  it('no ID on stdout or stderr', () => {
    ok();
    expect(scan(run.stdout)).toBeNull();
    expect(scan(run.stderr)).toBeNull();
  });
});

describe('report and manifest', () => {
  it('the report carries the rule catalogue, the gates and per-hospital counts that add up to the ledger', () => {
    ok();
    const report = JSON.parse(readFileSync(join(out, 'quality', 'report.json'), 'utf8'));
    expect(report.rule_catalogue).toEqual(RULES);
    expect(report.passed).toBe(true);
    const manifest = JSON.parse(readFileSync(join(out, '_manifest.json'), 'utf8'));
    for (const { dataset } of DATASETS) {
      const hs = report.hospitals.filter((h: { dataset: string }) => h.dataset === dataset);
      const sum = (k: 'read' | 'accepted' | 'rejected') => hs.reduce((a: number, h: { rows: Record<string, number> }) => a + h.rows[k], 0);
      const l = manifest.ledger.find((x: { dataset: string }) => x.dataset === dataset);
      expect([sum('read'), sum('accepted'), sum('rejected')]).toEqual([l.read, l.accepted, l.rejected]);
    }
    expect(existsSync(join(out, 'quality', 'report.html'))).toBe(true);
    expect(readFileSync(join(out, 'quality', 'report.html'), 'utf8')).toMatch(/<html/i);
  });
});

/**
 * SPEC §4 on inputs built to be hard, through `process` and `stats`, against
 * the input's own values (heart rate and temperature are given in their
 * canonical units, so the curated value is the number as written): heart
 * rates that agree to 8 digits, in one big hospital and in many small ones
 * (the ALL row merges them), a hospital of one row, and temperatures with
 * more distinct values than the exact histogram keeps (a t-digest).
 * `mean`/`stddev` within 1e-9 relative with no absolute slack; exact counts
 * and extremes; quantiles within rank 0.005.
 */
describe('statistics on adversarial inputs', () => {
  const rows: { h: string; measure: string; unit: string; value: string }[] = [];
  const r = prng(4242);
  for (let i = 0; i < 300; i++) rows.push({ h: 'H01', measure: 'heart_rate', unit: 'bpm', value: i % 3 ? '299.99' : '299.990001' });
  for (let h = 2; h < 150; h++) {
    for (let i = 0; i < 1 + (h % 3); i++) rows.push({ h: `H${String(h).padStart(2, '0')}`, measure: 'heart_rate', unit: 'bpm', value: (299.99 + Math.floor(r() * 10) * 1e-6).toFixed(6) });
  }
  for (let i = 0; i < 6000; i++) rows.push({ h: 'H01', measure: 'temperature', unit: 'celsius', value: (25 + r() * 20).toFixed(6) });
  for (let i = 0; i < 3000; i++) rows.push({ h: 'H02', measure: 'temperature', unit: 'celsius', value: (36.5 + r() * 1e-3).toFixed(9) });
  let stats: Record<string, string>[] = [];

  beforeAll(async () => {
    const dir = tempDir('hcp-e2e-adv-');
    const input = join(dir, 'vitals.csv');
    const lines = rows.map((x, i) => `${x.h},2024-03-${String(1 + (i % 28)).padStart(2, '0')},P${i},${x.measure},${x.value},${x.unit}`);
    writeFileSync(input, `hospital_id,measurement_date,patient_id,vital_type,value,unit\n${lines.join('\n')}\n`);
    const o = join(dir, 'out');
    for (const args of [['process', '--dataset', 'vitals', '--input', input], ['stats']]) {
      const res = await runCli([...args, '--out', o, '--as-of', '2025-01-01', '--no-progress'], { timeoutMs: 120_000 });
      expect(res.code, describeRun(res)).toBe(0);
    }
    stats = await readCsvObjects(join(o, 'stats', 'monthly_vitals.csv'));
  }, 180_000);

  it('every (hospital, measure) and ALL row against the exact statistics of the values written', () => {
    const groups = new Map<string, number[]>();
    for (const x of rows) {
      for (const h of [x.h, 'ALL']) {
        const k = `${h}|${x.measure}`;
        (groups.get(k) ?? groups.set(k, []).get(k)!).push(Number(x.value));
      }
    }
    expect(stats.map((s) => `${s.hospital_id}|${s.measure}`).sort()).toEqual([...groups.keys()].sort());
    for (const s of stats) {
      const where = `${s.hospital_id} ${s.measure}`;
      const vs = groups.get(`${s.hospital_id}|${s.measure}`)!;
      const want = exactMoments(vs);
      expect(Number(s.n), where).toBe(vs.length);
      expect(Number(s.n_patients), where).toBe(vs.length);
      expect(Number(s.min), where).toBe(Math.min(...vs));
      expect(Number(s.max), where).toBe(Math.max(...vs));
      expect(close(Number(s.mean), want.mean!, 1e-9), `${where} mean ${s.mean} vs ${want.mean}`).toBe(true);
      if (want.stddev === null) expect(s.stddev, where).toBe('');
      else expect(close(Number(s.stddev), want.stddev, 1e-9), `${where} stddev ${s.stddev} vs ${want.stddev}`).toBe(true);
      const sorted = Float64Array.from(vs).sort();
      for (const [col, p] of QS) expect(rankError(sorted, Number(s[col]), p), `${where} ${col}`).toBeNull();
    }
  });
});
