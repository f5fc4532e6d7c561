/**
 * Benchmark inputs: vitals files made by the engine's own generator
 * (deterministic for rows, seed and hospitals), cached under
 * DIR/data/vitals-<rows>-s<seed>-h<hospitals>/ so reruns reuse them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Input {
  readonly rows: number;
  readonly path: string;
  readonly bytes: number;
}

/** The compiled CLI in the work tree (the runner measures a snapshot of it, see snapshot.ts). */
export const CLI = 'dist/src/cli.js';

/** Returns the cached input for `rows`, generating it first when missing. */
export function ensureInput(outDir: string, rows: number, seed: number, hospitals: number, log: (s: string) => void, cli = CLI): Input {
  const dir = join(outDir, 'data', `vitals-${rows}-s${seed}-h${hospitals}`);
  const path = join(dir, 'vitals_2024.csv');
  const done = join(dir, '.complete');
  if (!existsSync(done) || !existsSync(path)) {
    log(`generating ${rows.toLocaleString('en-US')} vitals rows (seed ${seed}, ${hospitals} hospitals) → ${dir}`);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    execFileSync(process.execPath, [cli, 'generate', '--out', tmp, '--rows', String(rows), '--seed', String(seed), '--hospitals', String(hospitals)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    // Only vitals are benchmarked; the labs file would double the disk use.
    for (const f of ['lab_results_2024.csv', 'lab_results_2024.labels.csv']) rmSync(join(tmp, f), { force: true });
    writeFileSync(join(tmp, '.complete'), `${new Date().toISOString()}\n`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(outDir, 'data'), { recursive: true });
    renameSync(tmp, dir);
  }
  return { rows, path, bytes: statSync(path).size };
}
