/**
 * Keeps `npm run bench` working: runs it at a tiny size into a temporary
 * directory and checks the report has every section and row. No timing is
 * asserted — benchmarks are not timed tests.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedCpus, oneCoreCpu } from '../bench/lib/jobs.js';
import { medianRound, scalingBound } from '../bench/lib/report.js';
import { pairedRatio } from '../bench/lib/results.js';

const PYTHON = 'bench/.venv/bin/python';
const withPandas = existsSync(PYTHON);
const ROWS = 2000;

describe('bench (tiny size)', () => {
  const out = mkdtempSync(join(tmpdir(), 'hcp-bench-test-'));
  const docsBefore = existsSync('docs/PERFORMANCE.md') ? readFileSync('docs/PERFORMANCE.md', 'utf8') : null;
  let stdout = '';
  let md = '';
  let results: Record<string, any> = {};

  beforeAll(() => {
    if (!existsSync('dist/bench/run.js') || !existsSync('dist/src/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
    const args = ['dist/bench/run.js', '--rows', String(ROWS), '--sizes', `500,${ROWS}`, '--chunk-sizes', '65536,2097152', '--out', out];
    if (!withPandas) args.push('--skip-pandas');
    stdout = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    md = readFileSync(join(out, 'PERFORMANCE.md'), 'utf8');
    results = JSON.parse(readFileSync(join(out, `results-${ROWS}.json`), 'utf8'));
  }, 600_000);

  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('writes the report to --out, never to docs/ at a tiny size', () => {
    expect(stdout.trim().split('\n').at(-1)).toBe(join(out, 'PERFORMANCE.md'));
    const docsAfter = existsSync('docs/PERFORMANCE.md') ? readFileSync('docs/PERFORMANCE.md', 'utf8') : null;
    expect(docsAfter).toBe(docsBefore);
  });

  it('keeps the hand-written method section and the summary table', () => {
    expect(md).toContain('<!-- bench:method:start -->');
    expect(md).toContain('<!-- bench:method:end -->');
    expect(md).toMatch(/## Results at a glance[\s\S]*\| 2,000 \|/);
    expect(md).toContain(`<!-- bench:results:${ROWS}:start -->`);
  });

  it.each([
    'throughput vs DuckDB (same job, 2 threads)',
    'throughput vs pandas + pandera',
    '2 workers vs 1 worker',
    'peak RSS at 2,000 rows',
    'peak RSS flat in input size (500 → 2,000 rows)',
    'per-stage timings in the run summary',
    'parquet_encode share of stage time',
  ])('has the target row "%s"', (name) => {
    expect(md).toContain(`| ${name} |`);
  });

  it('compares the engine with the read floor, DuckDB and (with its venv) pandas', () => {
    expect(md).toMatch(/\| read floor: newline count, 1 MiB reads \| 2,000 \|/);
    expect(md).toMatch(/\| engine, 2 workers \(process \+ stats\) \| 2,000 \|/);
    expect(md).toMatch(/\| DuckDB v[\d.]+ SQL, 2 threads \| 2,000 \|/);
    if (withPandas) expect(md).toMatch(/\| pandas [\d.]+ \+ pandera [\d.]+ \| 2,000 \|/);
    else expect(md).toContain('pandas + pandera not run');
  });

  it('has the scaling tables: workers, chunk sizes, input sizes', () => {
    expect(md).toMatch(/### Scaling with workers[\s\S]*\n\| 1 \|[^\n]*\n\| 2 \|/);
    expect(md).toMatch(/### Chunk size[\s\S]*\n\| 64 KiB \|[^\n]*\n\| 2 MiB \|/);
    expect(md).toMatch(/### Scaling with input size[\s\S]*\n\| 500 \|[^\n]*\n\| 2,000 \|/);
  });

  it('measures the split of the Airflow path (partition): every row into a hospital file or __invalid__', () => {
    const p = results.partition;
    expect(p.tool).toBe('partition');
    expect(p.accepted + p.rejected).toBe(ROWS);
    // Independently: the invalid rows are the records the engine could not give a hospital, all rejected by process too.
    expect(p.rejected).toBeLessThanOrEqual(results.engine.rejected);
    expect(md).toMatch(
      new RegExp(`### The split before the per-hospital runs \\(\`partition\`\\)\\n\\n\\| job[^\\n]*\\n[^\\n]*\\n\\| engine \`partition\` \\| 2,000 \\| ${(p.wallMs / 1000).toFixed(2).replace('.', '\\.')} \\|`),
    );
  });

  it('splits CPU by thread and wall time by phase per worker count, with the bound the CPU sets on scaling', () => {
    expect(md).toMatch(/#### CPU by thread and wall time by phase\n\n\| workers \| coordinator CPU s[^\n]*\n[^\n]*\n\| 1 \|[^\n]*\n\| 2 \|/);
    const cores = results.machine.cores as number;
    const w1 = results.workers.find((w: { workers: number }) => w.workers === 1);
    const wN = results.workers.find((w: { workers: number }) => w.workers === cores);
    if (!wN || !w1.extra.cpu_ms) {
      expect(md).not.toContain('What the CPU allows');
      return;
    }
    // One round here: the runs the section reads are the only ones.
    expect(w1.runExtras).toEqual([w1.extra]);
    expect(wN.runExtras).toEqual([wN.extra]);
    // Independently: the N-worker run's CPU over N cores is the least time it can take.
    const c = wN.extra.cpu_ms;
    const bound = (cores * w1.extra.process_wall_ms) / (c.coordinator + c.workers + c.background);
    expect(md).toContain(`that is at most **${bound.toFixed(2)}×**`);
  });

  it('measures what the machine gives a second thread, next to the engine', () => {
    const c = results.cores;
    expect(c.threads).toBe(2);
    expect(c.kernels.map((k: { kernel: string }) => k.kernel)).toEqual(['compute', 'memory']);
    expect(md).toMatch(/#### What this machine gives a second thread\n\n\| work \| 1 thread alone s \| 2 threads at once s \| 2 threads ÷ 1 \|/);
    for (const k of c.kernels) {
      expect(k.scaling).toBeGreaterThan(0);
      expect(md).toContain(`| ${(k.aloneMs / 1000).toFixed(2)} | ${(k.togetherMs / 1000).toFixed(2)} | ${k.scaling.toFixed(2)}× |`);
    }
    // The engine row: its own 1- and 2-worker process wall times, independently divided.
    const w1 = results.workers.find((w: { workers: number }) => w.workers === 1);
    const w2 = results.workers.find((w: { workers: number }) => w.workers === 2);
    const engine = w1.extra.process_wall_ms / w2.extra.process_wall_ms;
    expect(md).toMatch(new RegExp(`\\| engine \`process\`, 1 worker → 2 workers \\(round 1\\) \\| [\\d.]+ \\| [\\d.]+ \\| ${engine.toFixed(2).replace('.', '\\.')}× \\| — \\|`));
  });

  it('runs one worker pinned to one core next to the main run, where it can pin', () => {
    const cpu = oneCoreCpu();
    if (cpu === null) {
      expect(results.oneCore).toBeNull();
      expect(md).not.toContain('#### One core →');
      return;
    }
    const one = results.oneCore;
    expect(one.cpu).toBe(cpu);
    expect(one.workers).toBe(1);
    expect(one.accepted + one.rejected).toBe(ROWS);
    expect(one.rejected).toBe(results.engine.rejected);
    // One round: the ratio is the two runs' throughputs, computed here from their wall times.
    const r = one.wallMsRuns[0] / results.engine.wallMsRuns[0];
    const cores = results.machine.cores as number;
    const workers = results.engine.workers as number;
    const many = workers === cores ? `${cores} cores` : `${workers} workers on ${cores} cores`;
    expect(md).toContain(`#### One core → ${many}\n\n| run | wall s | rows/s | vs 1 core |`);
    expect(md).toContain(`| 1 worker, 1 core (\`taskset -c ${cpu}\`) | ${(one.wallMs / 1000).toFixed(2)} |`);
    expect(md).toMatch(new RegExp(`\\| ${workers} workers, all ${cores} cores \\| [\\d.]+ \\| [\\d,]+ \\| ${r.toFixed(2).replace('.', '\\.')}× \\|`));
    expect(md).toContain(`${many} ${r.toFixed(2)}× one core`);
  });

  it.each(['read', 'parse', 'rules', 'transform', 'dedupe', 'sketch', 'parquet_encode', 'write'])('shows the engine stage "%s"', (stage) => {
    expect(md).toMatch(new RegExp(`\\n${stage} +[█ ]+ [\\d,]+ ms \\(`));
    expect(results.engine.timings[stage]).toEqual(expect.any(Number));
  });

  it('writes the SVG charts it links to', () => {
    for (const chart of ['compare', 'workers', 'rss', 'stages']) {
      const file = `performance/rows-${ROWS}-${chart}.svg`;
      expect(md).toContain(`](${file})`);
      expect(readFileSync(join(out, file), 'utf8')).toMatch(/^<svg [\s\S]*<\/svg>\n$/);
    }
  });

  it('every tool accounts for every input row (curated + rejected = read)', () => {
    for (const tool of ['engine', 'duckdb', ...(withPandas ? ['pandas'] : [])]) {
      expect(results[tool].accepted + results[tool].rejected, tool).toBe(ROWS);
    }
    // Same rules, same rows: pandas and the engine reject exactly the same rows.
    if (withPandas) expect(results.pandas.rejected).toBe(results.engine.rejected);
  });
});

describe('scalingBound', () => {
  const result = (_workers: number, processWallMs: number, cpu: { coordinator: number; workers: number; background: number } | null) => ({ process_wall_ms: processWallMs, cpu_ms: cpu });

  it.each([
    // 1-worker run 40 s; the 2-worker run used 50 CPU s: on 2 cores at least 25 s, so at most 1.6×.
    { t1: 40_000, cpu: { coordinator: 5_000, workers: 40_000, background: 5_000 }, cores: 2, bound: 1.6 },
    { t1: 30_000, cpu: { coordinator: 10_000, workers: 30_000, background: 20_000 }, cores: 2, bound: 1 },
    { t1: 60_000, cpu: { coordinator: 4_000, workers: 50_000, background: 6_000 }, cores: 4, bound: 4 },
  ])('$cores cores, 1 worker $t1 ms, N workers $cpu.workers + others: at most $bound×', ({ t1, cpu, cores, bound }) => {
    expect(scalingBound(result(1, t1, null), result(cores, 0, cpu), cores)).toBeCloseTo(bound, 10);
  });

  it('is unknown without thread times', () => {
    expect(scalingBound(result(1, 40_000, null), result(2, 0, null), 2)).toBeNull();
  });
});

describe('medianRound', () => {
  const engine = (walls: number[] | null, median: number) =>
    ({ workers: 1, extra: { process_wall_ms: median }, runExtras: walls?.map((w) => ({ process_wall_ms: w })) }) as never;

  it.each([
    // Ratios by round 1.33, 1.88, 1.49 (the 10M run of 2026-12-03): round 3.
    { one: [38_838, 33_026, 26_392], many: [29_238, 17_555, 17_675], round: 3 },
    { one: [10, 10, 10], many: [5, 10, 20], round: 2 },
    // Even: the lower middle (ratios 1, 2, 3, 4 → round with 2).
    { one: [10, 20, 30, 40], many: [10, 10, 10, 10], round: 2 },
    { one: [10], many: [10], round: 1 },
  ])('1-worker $one vs N-worker $many: round $round', ({ one, many, round }) => {
    const pair = medianRound(engine(one, 0), engine(many, 0));
    expect(pair.round).toBe(round);
    expect(pair.one).toEqual({ process_wall_ms: one[round - 1] });
    expect(pair.many).toEqual({ process_wall_ms: many[round - 1] });
  });

  it('falls back to the median runs without per-round data (results recorded before it)', () => {
    const pair = medianRound(engine(null, 33_000), engine(null, 17_700));
    expect(pair).toEqual({ one: { process_wall_ms: 33_000 }, many: { process_wall_ms: 17_700 }, round: null });
  });
});

describe('pairedRatio', () => {
  const run = (rows: number, wallMsRuns: number[]) => {
    const sorted = [...wallMsRuns].sort((a, b) => a - b);
    const wall = sorted.length % 2 ? sorted[sorted.length >> 1] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    return { rows, wallMsRuns, wallMs: wall, rowsPerS: rows / (wall / 1000) } as never;
  };

  it.each([
    // Steady host: every round 2× → 2×, like the ratio of the medians.
    { a: [10, 11, 12], b: [20, 22, 24], rowsA: 1, rowsB: 1, paired: 2 },
    // The 10M run of 2026-12-03 (2w vs 1w, s): the host sped up during the run. Rounds 1.33×, 1.88×, 1.49×:
    // the median round 1.49×, where the ratio of the medians (33.0 / 17.7) would say 1.86×.
    { a: [29.238, 17.555, 17.675], b: [38.838, 33.026, 26.392], rowsA: 1, rowsB: 1, paired: 26.392 / 17.675 },
    // Different inputs (a tool run on fewer rows): throughput, not time.
    { a: [10, 10, 10], b: [4, 4, 4], rowsA: 10, rowsB: 2, paired: 2 },
    // An even number of rounds: the mean of the middle two.
    { a: [10, 10, 10, 10], b: [10, 20, 30, 40], rowsA: 1, rowsB: 1, paired: 2.5 },
  ])('rounds $a vs $b: $paired', ({ a, b, rowsA, rowsB, paired }) => {
    expect(pairedRatio(run(rowsA, a), run(rowsB, b))).toBeCloseTo(paired, 9);
  });

  it('falls back to the ratio of the medians when the run counts differ (a pandas retry)', () => {
    const a = run(1, [10, 10, 10]);
    const b = run(1, [30]);
    expect(pairedRatio(a, b)).toBeCloseTo(3, 9);
  });
});

describe('allowedCpus', () => {
  it.each([
    ['Cpus_allowed_list:\t0-1\n', [0, 1]],
    ['Name:\tnode\nCpus_allowed:\t3\nCpus_allowed_list:\t0,2-4\nMems_allowed:\t1\n', [0, 2, 3, 4]],
    ['Cpus_allowed_list:\t5\n', [5]],
    ['Name:\tnode\n', null],
    [null, null],
  ])('%j → %j', (status, cpus) => {
    expect(allowedCpus(status)).toEqual(cpus);
  });
});
