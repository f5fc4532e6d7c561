import { describe, expect, it } from 'vitest';
import { roundOrder, type Job } from '../bench/lib/plan.js';

/** The bench's round order (bench/lib/plan.ts): the compared runs back to back, the rest rotating. */
const job = (key: string) => ({ key }) as Job;
const PLAN = ['main', 'duckdb', 'pandas', 'w1', 'c524288', 'c8388608', 's1000000'].map(job);
const keys = (jobs: Job[]) => jobs.map((j) => j.key);

describe('roundOrder', () => {
  it.each([
    [0, ['pandas', 'duckdb', 'main', 'w1', 'c524288', 'c8388608', 's1000000']],
    [1, ['c524288', 'c8388608', 's1000000', 'pandas', 'duckdb', 'main', 'w1']],
    [2, ['c8388608', 's1000000', 'pandas', 'duckdb', 'main', 'w1', 'c524288']],
    [3, ['s1000000', 'pandas', 'duckdb', 'main', 'w1', 'c524288', 'c8388608']],
    // Four units: round 4 starts over.
    [4, ['pandas', 'duckdb', 'main', 'w1', 'c524288', 'c8388608', 's1000000']],
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
