/**
 * `partition` (src/commands/partition.ts): the byte ledger — every byte the
 * preflight found is read, no more and no less — and a failed split leaves
 * the landing directory as it was.
 */
import { readdirSync, readFileSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { partitionFile } from '../src/commands/partition.js';
import { PipelineError } from '../src/errors.js';
import { DATA, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

/** A hook run before each readFully call: lets a test change the file while it is being read. */
const reads = vi.hoisted(() => ({ count: 0, before: null as null | ((n: number) => void) }));
vi.mock('../src/sinks/fsutil.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/sinks/fsutil.js')>();
  return {
    ...m,
    readFully: (...a: Parameters<typeof m.readFully>) => {
      reads.before?.(++reads.count);
      return m.readFully(...a);
    },
  };
});

const VITALS = readFileSync(join(DATA, 'vitals_2024.csv'));

describe('partition: an input that changes while it is read', () => {
  it.each([
    ['shrinks', (f: string) => truncateSync(f, Math.floor(VITALS.length / 2))],
    ['grows', (f: string) => writeFileSync(f, 'H001,2024-02-12,P1,heart_rate,70,bpm\n'.repeat(50), { flag: 'a' })],
  ])('%s: the byte ledger fails (exit 1) and no landing file is written or replaced', async (_, change) => {
    const dir = tempDir();
    const input = join(dir, 'vitals.csv');
    writeFileSync(input, VITALS);
    const landing = join(dir, 'landing');
    mkdirSync(join(landing, 'vitals'), { recursive: true });
    const previous = join(landing, 'vitals', 'hospital_id=H001.csv');
    writeFileSync(previous, 'the previous split\n');
    // Reads 1 and 2 are the header (preflight, then partition); the file changes after the first data read.
    reads.count = 0;
    reads.before = (n) => n === 4 && change(input);
    let error: unknown = null;
    try {
      await partitionFile('vitals', input, landing, 1024, 1 << 20);
    } catch (e) {
      error = e;
    } finally {
      reads.before = null;
    }
    expect(error).toBeInstanceOf(PipelineError);
    expect((error as PipelineError).code).toBe('HCP_ERR_LEDGER');
    expect((error as PipelineError).exitCode).toBe(1);
    expect((error as Error).message).toMatch(/Byte ledger mismatch/);
    expect(readdirSync(join(landing, 'vitals'))).toEqual(['hospital_id=H001.csv']);
    expect(readFileSync(previous, 'utf8')).toBe('the previous split\n');
  });

  it('unchanged: every row lands, the files replace the previous split, nothing else is left', async () => {
    const dir = tempDir();
    const input = join(dir, 'vitals.csv');
    writeFileSync(input, VITALS);
    const landing = join(dir, 'landing');
    mkdirSync(join(landing, 'vitals'), { recursive: true });
    writeFileSync(join(landing, 'vitals', 'hospital_id=H001.csv'), 'the previous split\n');
    const s = await partitionFile('vitals', input, landing, 1024, 1 << 20);
    expect(s.rows_read).toBeGreaterThan(900);
    expect(s.partitions.reduce((n, p) => n + p.rows, 0)).toBe(s.rows_read);
    const files = readdirSync(join(landing, 'vitals')).sort();
    expect(files).toEqual(s.partitions.map((p) => `hospital_id=${p.hospital_id}.csv`).sort());
    // Each split file's line map (where its records start in the input) sits outside the dataset's folder.
    expect(readdirSync(join(landing, '_lines', 'vitals')).sort()).toEqual(files.map((f) => `${f}.lines`));
    const header = VITALS.toString('utf8').split('\n')[0];
    for (const p of s.partitions) expect(readFileSync(p.path, 'utf8').split('\n')[0]).toBe(header);
  });
});
