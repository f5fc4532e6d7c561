import { afterEach, describe, expect, it } from 'vitest';
import { parseCli } from '../src/config.js';

const KNOBS = ['HCP_MAX_BUFFERED_ROWS', 'HCP_DEDUPE_FILTER_BITS'] as const;
const saved = Object.fromEntries(KNOBS.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const k of KNOBS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe('test knobs from the environment, settled in the config', () => {
  it.each<[string, Partial<Record<(typeof KNOBS)[number], string>>, number, number | null]>([
    ['unset: the defaults', {}, 400_000, null],
    ['both set', { HCP_MAX_BUFFERED_ROWS: '16', HCP_DEDUPE_FILTER_BITS: '512' }, 16, 512],
    ['zero is unset', { HCP_MAX_BUFFERED_ROWS: '0', HCP_DEDUPE_FILTER_BITS: '0' }, 400_000, null],
    ['not a number is unset', { HCP_MAX_BUFFERED_ROWS: 'lots', HCP_DEDUPE_FILTER_BITS: '' }, 400_000, null],
  ])('%s', (_, env, maxBufferedRows, dedupeFilterBits) => {
    for (const k of KNOBS) delete process.env[k];
    Object.assign(process.env, env);
    const { config } = parseCli(['process', '--dataset', 'vitals', '--input', 'x.csv']);
    expect(config.maxBufferedRows).toBe(maxBufferedRows);
    expect(config.dedupeFilterBits).toBe(dedupeFilterBits);
  });
});
