/**
 * processFile's commit (src/coordinator.ts): every check that can fail does
 * so before `beforeCommit` (where `run` drops `_SUCCESS`) and before the first
 * rename. Runs the built engine (dist/, for its worker pool), with a
 * Partitions whose per-hospital row counts are off by one row between two
 * hospitals while the file's total still holds: a hospital-level ledger
 * mismatch only.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { DATA, listFiles, processConfig, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const tamper = vi.hoisted(() => ({ on: false }));
vi.mock('../dist/src/merge/partitions.js', async (importOriginal) => {
  const m = await importOriginal<{ Partitions: new (...a: any[]) => { entries(): Generator<{ hospital: string; rows: number }> } }>();
  class Tampered extends m.Partitions {
    *entries(): Generator<any> {
      const all = [...super.entries()].map((e) => ({ ...e }));
      if (tamper.on) {
        const a = all[0];
        const b = all.find((e) => e.hospital !== a.hospital)!;
        a.rows += 1;
        b.rows -= 1;
      }
      yield* all;
    }
  }
  return { ...m, Partitions: Tampered };
});

const { processFile } = await import('../dist/src/coordinator.js');
const { createPool } = await import('../dist/src/pool.js');
const { silentLogger } = await import('../dist/src/log.js');


describe('processFile: beforeCommit comes after every check', () => {
  it('a hospital-level ledger mismatch fails (HCP_ERR_LEDGER) without calling beforeCommit or changing the output', async () => {
    const out = join(tempDir(), 'out');
    const input = join(DATA, 'vitals_2024.csv');
    const pool = createPool(1, () => {});
    try {
      let calls = 0;
      tamper.on = false;
      await processFile(processConfig(input, out, { beforeCommit: () => calls++ }), pool, silentLogger, null);
      expect(calls).toBe(1); // the control: a good file calls it once
      writeFileSync(join(out, '_SUCCESS'), '');
      const before = listFiles(out).map((f) => [f, readFileSync(join(out, f), 'utf8')]);

      tamper.on = true;
      calls = 0;
      await expect(processFile(processConfig(input, out, { beforeCommit: () => calls++ }), pool, silentLogger, null)).rejects.toMatchObject({
        code: 'HCP_ERR_LEDGER',
        message: expect.stringMatching(/for hospital/),
      });
      expect(calls).toBe(0);
      expect(listFiles(out).map((f) => [f, readFileSync(join(out, f), 'utf8')])).toEqual(before);
      expect(existsSync(join(out, '_SUCCESS'))).toBe(true);
    } finally {
      tamper.on = false;
      await pool.destroy();
    }
  });
});

describe('processFile: a commit whose staged output went missing', () => {
  it('fails (HCP_ERR_INTERNAL) before touching the hospital\'s curated data, and the pending marker stays', async () => {
    const out = join(tempDir(), 'out');
    const input = join(DATA, 'vitals_2024.csv');
    const pool = createPool(1, () => {});
    try {
      await processFile(processConfig(input, out), pool, silentLogger, null);
      const curated = (f: string) => f.startsWith('curated/');
      const before = listFiles(out).filter(curated).map((f) => [f, readFileSync(join(out, f), 'utf8')]);
      expect(before.length).toBeGreaterThan(0);
      // Something else removes the run's staged curated files (as a sweep by another run once did) before the commit.
      const beforeCommit = () => {
        for (const run of readdirSync(join(out, '_staging'))) rmSync(join(out, '_staging', run, 'curated'), { recursive: true, force: true });
      };
      await expect(processFile(processConfig(input, out, { beforeCommit }), pool, silentLogger, null)).rejects.toMatchObject({
        code: 'HCP_ERR_INTERNAL',
        message: expect.stringMatching(/Staged output of hospital \S+ is missing/),
      });
      expect(listFiles(out).filter(curated).map((f) => [f, readFileSync(join(out, f), 'utf8')])).toEqual(before);
      expect(listFiles(out).some((f) => f.startsWith('_manifests/vitals/pending/'))).toBe(true);
    } finally {
      await pool.destroy();
    }
  });
});
