/**
 * SPEC §4/§5 determinism: the same input and chunk size give byte-identical
 * statistics (and quarantine, sketches) for any --workers; a small chunk
 * size makes many chunks, so duplicates cross chunk boundaries; rerunning
 * the same partition replaces it with the same bytes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvRecords, curatedScan, describeRun, listFiles, query, readQuarantine, removeTempDirs, runCli, tempDir } from './helpers.js';

const CHUNK = 65_536;
const WORKERS = [1, 2, 4];
const COMMON = ['--chunk-size', String(CHUNK), '--as-of', '2025-06-30', '--no-progress'];

let dir: string;
let vitals: string;
let labs: string;
const outs = new Map<number, string>();

async function ok(args: string[]) {
  const r = await runCli(args, { timeoutMs: 120_000 });
  expect(r.code, `${args.join(' ')}\n${describeRun(r)}`).toBe(0);
  return r;
}

/** `run`: process both files, then stats and the report (the gate is not what this file tests). */
async function pipeline(out: string, workers: number) {
  await ok(['run', '--vitals', vitals, '--labs', labs, '--out', out, '--workers', String(workers), '--max-reject-rate', '1', ...COMMON]);
}

beforeAll(async () => {
  dir = tempDir('hcp-det-');
  const g = await ok(['generate', '--out', join(dir, 'in'), '--rows', '30000', '--seed', '5', '--hospitals', '4']);
  const files = g.json!.files as { dataset: string; path: string }[];
  vitals = files.find((f) => f.dataset === 'vitals')!.path;
  labs = files.find((f) => f.dataset === 'labs')!.path;
  for (const w of WORKERS) {
    const out = join(dir, `out-w${w}`);
    outs.set(w, out);
    await pipeline(out, w);
  }
}, 300_000);

afterAll(removeTempDirs);

/** Files whose bytes must not depend on the worker count. */
const compared = (out: string) =>
  listFiles(out).filter((f) => f.startsWith('stats/') || f.startsWith('quarantine/') || f.startsWith('sketches/'));

const bytesOf = (out: string, f: string) => readFileSync(join(out, f));

describe('determinism across --workers', () => {
  it('the input spans many chunks', () => {
    expect(readFileSync(vitals).length / CHUNK).toBeGreaterThan(10);
    expect(readFileSync(labs).length / CHUNK).toBeGreaterThan(10);
  });

  it('the same files exist for every worker count', () => {
    const base = listFiles(outs.get(1)!);
    expect(base.length).toBeGreaterThan(10);
    for (const w of WORKERS.slice(1)) expect(listFiles(outs.get(w)!)).toEqual(base);
  });

  it.each(WORKERS.slice(1))('stats CSV and Parquet are byte-identical for --workers 1 and %i', (w) => {
    for (const f of ['stats/monthly_vitals.csv', 'stats/monthly_vitals.parquet', 'stats/monthly_vitals_public.csv', 'stats/monthly_labs.csv', 'stats/monthly_labs.parquet', 'stats/monthly_labs_public.csv']) {
      expect(bytesOf(outs.get(w)!, f).equals(bytesOf(outs.get(1)!, f)), f).toBe(true);
    }
  });

  it.each(WORKERS.slice(1))('quarantine and sketch files are byte-identical for --workers 1 and %i', (w) => {
    const files = compared(outs.get(1)!);
    expect(files.some((f) => f.startsWith('quarantine/'))).toBe(true);
    for (const f of files) expect(bytesOf(outs.get(w)!, f).equals(bytesOf(outs.get(1)!, f)), f).toBe(true);
  });

  it.each(WORKERS.slice(1))('curated Parquet holds the same rows in the same order for --workers 1 and %i', async (w) => {
    for (const d of ['vitals', 'labs']) {
      const a = await query(`SELECT * EXCLUDE (filename), filename[${outs.get(1)!.length + 1}:] AS f FROM ${curatedScan(outs.get(1)!, d)}`);
      const b = await query(`SELECT * EXCLUDE (filename), filename[${outs.get(w)!.length + 1}:] AS f FROM ${curatedScan(outs.get(w)!, d)}`);
      expect(b).toEqual(a);
    }
  });

  it('the manifests agree on the counts', () => {
    const counts = (out: string) =>
      listFiles(join(out, '_manifests')).filter((f) => /\/hospital_id=[^/]+\.json$/.test(f)).map((f) => {
        const m = JSON.parse(readFileSync(join(out, '_manifests', f), 'utf8'));
        return [f, Object.fromEntries(Object.entries(m.scopes).map(([k, v]) => [k, [(v as any).rows, (v as any).rejects_by_rule, (v as any).months]]))];
      });
    for (const w of WORKERS.slice(1)) expect(counts(outs.get(w)!)).toEqual(counts(outs.get(1)!));
  });

  it('duplicates across chunk boundaries are found (first kept, later copies quarantined)', async () => {
    const text = readFileSync(vitals, 'utf8');
    const recs = csvRecords(text);
    const offsets: number[] = [0];
    {
      // Byte offset of the start of each physical line.
      const buf = Buffer.from(text, 'utf8');
      for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) offsets.push(i + 1);
    }
    const firstSeen = new Map<string, number>();
    const key = (f: string[]) => f.map((x) => x.trim()).join('\u0000');
    const q = await readQuarantine(outs.get(2)!, 'vitals');
    const rejected = new Set(q.map((r) => Number(r.line_number)));
    const dups = new Set(q.filter((r) => r.reason_codes === 'duplicate.exact').map((r) => Number(r.line_number)));
    expect(dups.size).toBeGreaterThan(0);
    let crossChunk = 0;
    for (const r of recs.slice(1)) {
      const k = key(r.fields);
      const first = firstSeen.get(k);
      if (first === undefined) {
        if (!rejected.has(r.line)) firstSeen.set(k, r.line);
      } else {
        // A later copy of an accepted row is rejected as a duplicate.
        expect(dups.has(r.line), `line ${r.line} repeats line ${first}`).toBe(true);
        if (offsets[r.line - 1] - offsets[first - 1] > CHUNK) crossChunk++;
      }
    }
    expect(crossChunk).toBeGreaterThan(0);
  });
});

describe.each([
  // HCP_DEDUPE_FILTER_BITS=512: a one-block Bloom filter, so almost every
  // accepted row is a suspect, held until the end of the file and released
  // (or quarantined) after the log is read: the path false positives take.
  ['the duplicate filter holding back (nearly) every row', { HCP_DEDUPE_FILTER_BITS: '512' }],
  // HCP_MAX_BUFFERED_ROWS=16: partitions spill their rows to staging after
  // every chunk and read them back when the row group is encoded.
  ['partitions spilling their rows at every chunk', { HCP_MAX_BUFFERED_ROWS: '16' }],
])('%s gives the same result', (_, env) => {
  let other: string;
  beforeAll(async () => {
    other = join(dir, `out-${Object.keys(env)[0]}`);
    const r = await runCli(['run', '--vitals', vitals, '--labs', labs, '--out', other, '--workers', '2', '--max-reject-rate', '1', ...COMMON], {
      timeoutMs: 120_000,
      env,
    });
    expect(r.code, describeRun(r)).toBe(0);
  }, 300_000);

  it.each(['vitals', 'labs'])('%s: the same curated rows (order aside)', async (d) => {
    const rows = async (out: string) =>
      query(`SELECT * EXCLUDE (filename), filename[${out.length + 1}:] AS f FROM ${curatedScan(out, d)} ORDER BY ALL`);
    expect(await rows(other)).toEqual(await rows(outs.get(2)!));
  });

  it.each(['vitals', 'labs'])('%s: one row group per file (each has far fewer than --row-group-rows rows)', async (d) => {
    const groups = async (out: string) =>
      query(`SELECT file_name, count(DISTINCT row_group_id)::INTEGER AS n FROM parquet_metadata('${out}/curated/${d}/**/*.parquet') GROUP BY ALL`);
    const files = await groups(other);
    expect(files.length).toBeGreaterThan(20);
    expect(files.filter((f) => f.n !== 1)).toEqual([]);
  });

  it.each(['vitals', 'labs'])('%s: the same quarantined rows, duplicates included (order aside)', async (d) => {
    const sorted = async (out: string) => (await readQuarantine(out, d)).map((r) => JSON.stringify(r)).sort();
    const a = await sorted(other);
    expect(a.some((r) => r.includes('duplicate.exact'))).toBe(true);
    expect(a).toEqual(await sorted(outs.get(2)!));
  });

  it.each(['vitals', 'labs'])('%s: the same statistics (mean and stddev to 1e-12: rows are summed in another order)', (d) => {
    const table = (out: string) => csvRecords(readFileSync(join(out, 'stats', `monthly_${d}.csv`), 'utf8')).map((r) => r.fields);
    const a = table(other);
    const b = table(outs.get(2)!);
    expect(a.length).toBe(b.length);
    const header = b[0];
    for (let i = 1; i < b.length; i++) {
      header.forEach((col, k) => {
        if (col === 'mean' || col === 'stddev') expect(Number(a[i][k])).toBeCloseTo(Number(b[i][k]), 12);
        else expect(a[i][k], `${col} of row ${i}`).toBe(b[i][k]);
      });
    }
  });
});

describe('rerunning the same partition', () => {
  it('replaces it and gives the same bytes', async () => {
    const out = outs.get(2)!;
    // Manifests and the report carry timestamps; everything else must come back byte for byte.
    const stamped = (f: string) => f.startsWith('_manifests/') || f === '_manifest.json' || f.startsWith('quality/');
    const before = new Map(listFiles(out).filter((f) => !stamped(f)).map((f) => [f, bytesOf(out, f)]));
    const curatedBefore = (await query(`SELECT count(*) AS n FROM ${curatedScan(out, 'vitals')}`))[0].n;
    await ok(['process', '--dataset', 'vitals', '--input', vitals, '--out', out, '--workers', '4', ...COMMON]);
    await ok(['stats', '--out', out]);
    const after = listFiles(out).filter((f) => !stamped(f));
    expect(after).toEqual([...before.keys()]);
    for (const f of after) {
      if (f.startsWith('curated/')) continue; // compared by content below
      expect(bytesOf(out, f).equals(before.get(f)!), f).toBe(true);
    }
    expect((await query(`SELECT count(*) AS n FROM ${curatedScan(out, 'vitals')}`))[0].n).toBe(curatedBefore);
    const a = await query(`SELECT * EXCLUDE (filename) FROM ${curatedScan(out, 'vitals')}`);
    const b = await query(`SELECT * EXCLUDE (filename) FROM ${curatedScan(outs.get(1)!, 'vitals')}`);
    expect(a).toEqual(b);
    // The hospital manifests record the previous run's row count.
    for (const f of listFiles(join(out, '_manifests', 'vitals')).filter((x) => /^hospital_id=[^/]+\.json$/.test(x))) {
      const m = JSON.parse(readFileSync(join(out, '_manifests', 'vitals', f), 'utf8'));
      expect(m.scopes.all.previous_rows_read).toBe(m.scopes.all.rows.read);
    }
  });
});
