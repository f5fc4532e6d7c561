import { describe, expect, it } from 'vitest';
import { planJobs, roundOrder, type Job } from '../bench/lib/plan.js';
import type { Input } from '../bench/lib/data.js';
import { parseOptions, type BenchOptions } from '../bench/lib/options.js';

/** The bench's round order (bench/lib/plan.ts): the compared runs back to back, the rest rotating. */
const job = (key: string) => ({ key }) as Job;
const PLAN = ['main', 'duckdb', 'pandas', 'w1', 'core1', 'c524288', 'c8388608', 's1000000'].map(job);
const keys = (jobs: Job[]) => jobs.map((j) => j.key);

describe('roundOrder', () => {
  it.each([
    [0, ['pandas', 'duckdb', 'main', 'w1', 'core1', 'c524288', 'c8388608', 's1000000']],
    [1, ['c524288', 'c8388608', 's1000000', 'pandas', 'duckdb', 'main', 'w1', 'core1']],
    [2, ['c8388608', 's1000000', 'pandas', 'duckdb', 'main', 'w1', 'core1', 'c524288']],
    [3, ['s1000000', 'pandas', 'duckdb', 'main', 'w1', 'core1', 'c524288', 'c8388608']],
    // Four units: round 4 starts over.
    [4, ['pandas', 'duckdb', 'main', 'w1', 'core1', 'c524288', 'c8388608', 's1000000']],
  ])('round %i: %j', (round, order) => {
    expect(keys(roundOrder(PLAN, round))).toEqual(order);
  });

  it('runs every job once a round, the main run next to DuckDB and to the other worker counts', () => {
    const plans = [PLAN, ['main', 'w1', 'w2', 'c65536'].map(job), ['main', 'duckdb', 's500'].map(job), ['main'].map(job)];
    for (const plan of plans) {
      for (let r = 0; r < 6; r++) {
        const order = keys(roundOrder(plan, r));
        expect([...order].sort()).toEqual(keys(plan).sort());
        const m = order.indexOf('main');
        if (order.includes('duckdb')) expect(order[m - 1]).toBe('duckdb');
        const ws = order.filter((k) => /^w\d+$/.test(k));
        expect(order.slice(m + 1, m + 1 + ws.length)).toEqual(ws);
      }
    }
  });
});

describe('planJobs', () => {
  const input = (rows: number) => ({ rows, path: `v${rows}.csv`, bytes: rows * 50 }) as Input;
  const opts = (workers: number[]) => ({ workers, chunkSizes: [2097152], skipDuckdb: false }) as unknown as BenchOptions;
  const plan = (workers: number[], oneCore: number | null) => planJobs(opts(workers), input(1000), [input(1000)], null, 2097152, oneCore);

  it.each([
    [[1, 2], 3, ['main', 'duckdb', 'w1', 'core1', 'partition']],
    [[1, 2], null, ['main', 'duckdb', 'w1', 'partition']],
    // One worker at most: nothing to compare one core with.
    [[1], 0, ['main', 'duckdb', 'partition']],
  ])('workers %j, one core %j → %j', (workers, oneCore, keys) => {
    expect(plan(workers, oneCore).map((j) => j.key)).toEqual(keys);
  });

  it('pins only the one-core run, to the CPU it was given, with one worker', () => {
    const jobs = plan([1, 2], 3);
    expect(jobs.filter((j) => j.cpu !== null).map((j) => [j.key, j.workers, j.cpu])).toEqual([['core1', 1, 3]]);
  });
});

describe('bench options', () => {
  // The engine refuses --workers above its cap; the largest count runs after the reference jobs, so the bench
  // refuses it at once instead (bench:10m would otherwise fail an hour in).
  it.each<[string[], RegExp | null]>([
    [['--workers', '1,64'], null],
    [['--workers', '1,65'], /--workers must each be at most 64/],
    [['--chunk-sizes', '1023'], /--chunk-sizes must each be at least 1024/],
  ])('%j', (argv, error) => {
    if (error) expect(() => parseOptions(argv)).toThrow(error);
    else expect(parseOptions(argv)).toMatchObject({ workers: [1, 64] });
  });
});
