/**
 * What one run measures, as a flat list of jobs, and the rounds that run
 * them. Every round runs every job once. The jobs the targets compare
 * (pandas, DuckDB, the engine at the largest worker count, the engine at
 * the other worker counts) run back to back as one block, the engine's
 * main run in the middle, so each ratio pairs two runs minutes apart at
 * most: the host's speed drifts within a run, and the ratios are taken
 * round by round (results.ts, `pairedRatio`). The block and the other
 * configurations (chunk sizes, input sizes) start one place later each
 * round, so a slow spell spreads over all of them instead of hitting one.
 */
import { ensureInput, type Input } from './data.js';
import { int, rowsLabel, secs } from './format.js';
import { duckdbJob, engineJob, pandasJob, partitionJob, type JobContext, type Sample, type Tool } from './jobs.js';
import type { BenchOptions } from './options.js';

/** pandas is retried at this size when the full size fails (timeout, out of memory). */
export const PANDAS_FALLBACK_ROWS = 2_000_000;

export interface Job {
  /** `main` (engine at the largest worker count, default chunk, --rows), `duckdb`, `pandas`, `w<N>`, `core1`, `c<bytes>`, `s<rows>`, `partition`. */
  readonly key: string;
  readonly tool: Tool;
  readonly input: Input;
  readonly workers: number;
  readonly chunkSize: number | null;
  readonly label: string;
  /** The one CPU the job is pinned to (`taskset -c`), or null: all of them. */
  readonly cpu: number | null;
}

/**
 * The jobs of a run; configurations equal to `main` are not repeated.
 * With `oneCore` (a CPU number), the engine also runs with one worker
 * pinned to that CPU (`core1`): one core against the main run's all.
 */
export function planJobs(o: BenchOptions, input: Input, sizeInputs: readonly Input[], pandasInput: Input | null, defaultChunk: number | null, oneCore: number | null = null): Job[] {
  const maxW = o.workers[o.workers.length - 1];
  const engine = (key: string, inp: Input, workers: number, chunkSize: number | null, label: string, cpu: number | null = null): Job => ({ key, tool: 'engine', input: inp, workers, chunkSize, label, cpu });
  const jobs: Job[] = [engine('main', input, maxW, null, `engine ${maxW}w`)];
  if (!o.skipDuckdb) jobs.push({ key: 'duckdb', tool: 'duckdb', input, workers: o.duckdbThreads, chunkSize: null, label: 'DuckDB', cpu: null });
  if (pandasInput) jobs.push({ key: 'pandas', tool: 'pandas', input: pandasInput, workers: 1, chunkSize: null, label: 'pandas + pandera', cpu: null });
  for (const w of o.workers) if (w !== maxW) jobs.push(engine(`w${w}`, input, w, null, `engine ${w}w`));
  if (oneCore !== null && maxW > 1) jobs.push(engine('core1', input, 1, null, `engine 1w on CPU ${oneCore} only`, oneCore));
  for (const c of o.chunkSizes) if (c !== defaultChunk) jobs.push(engine(`c${c}`, input, maxW, c, `engine ${maxW}w chunk ${c}`));
  for (const s of sizeInputs) if (s.rows !== input.rows) jobs.push(engine(`s${s.rows}`, s, maxW, null, `engine ${maxW}w ${rowsLabel(s.rows)} rows`));
  jobs.push({ key: 'partition', tool: 'partition', input, workers: 1, chunkSize: null, label: 'engine partition', cpu: null });
  return jobs;
}

/**
 * The order of round `round`: the comparison block (pandas, DuckDB, the
 * main engine run, the other worker counts, the one-core run: in that
 * order) as one unit,
 * then each other job as its own unit, rotated by the round number.
 */
export function roundOrder(jobs: readonly Job[], round: number): Job[] {
  // Place in the block, or −1 for a job outside it.
  const rank = (j: Job) => {
    const k = ['pandas', 'duckdb', 'main'].indexOf(j.key);
    return k >= 0 ? k : /^w\d+$/.test(j.key) ? 3 : j.key === 'core1' ? 4 : -1;
  };
  const block = jobs.filter((j) => rank(j) >= 0).sort((a, b) => rank(a) - rank(b));
  const units: Job[][] = [...(block.length ? [block] : []), ...jobs.filter((j) => rank(j) < 0).map((j) => [j])];
  const shift = units.length ? round % units.length : 0;
  return [...units.slice(shift), ...units.slice(0, shift)].flat();
}

export interface Rounds {
  readonly samples: Map<string, Sample[]>;
  /** The input pandas finally ran on (smaller than --rows after a fallback), or null. */
  readonly pandasInput: Input | null;
  readonly pandasReason: string | null;
  readonly notes: string[];
}

/** Runs `repeat` rounds of every job; logs each sample. */
export async function runRounds(ctx: JobContext, o: BenchOptions, jobs: readonly Job[], log: (s: string) => void): Promise<Rounds> {
  const samples = new Map<string, Sample[]>(jobs.map((j) => [j.key, []]));
  const notes: string[] = [];
  let pandasInput: Input | null = jobs.find((j) => j.tool === 'pandas')?.input ?? null;
  let pandasReason: string | null = pandasInput && pandasInput.rows < o.rows ? `--pandas-rows ${pandasInput.rows}` : null;
  const describe = (what: string, s: Sample, rows: number) =>
    log(`${what} (${rowsLabel(rows)}): ${secs(s.wallMs)} s, ${int(rows / (s.wallMs / 1000))} rows/s, peak RSS ${s.maxRssBytes === null ? 'n/a' : int(s.maxRssBytes / 1e6)} MB`);

  for (let r = 0; r < o.repeat; r++) {
    if (o.repeat > 1) log(`round ${r + 1} of ${o.repeat}`);
    for (const job of roundOrder(jobs, r)) {
      if (job.tool === 'engine' || job.tool === 'partition') {
        const s = job.tool === 'engine' ? await engineJob(ctx, job.input, job.workers, job.chunkSize, job.cpu) : await partitionJob(ctx, job.input);
        describe(job.label, s, job.input.rows);
        samples.get(job.key)!.push(s);
      } else if (job.tool === 'duckdb') {
        const s = await duckdbJob(ctx, job.input);
        describe(job.label, s, job.input.rows);
        samples.get(job.key)!.push(s);
      } else {
        while (pandasInput) {
          try {
            const s = await pandasJob(ctx, pandasInput);
            describe(job.label, s, pandasInput.rows);
            samples.get(job.key)!.push(s);
            break;
          } catch (e) {
            const msg = (e as Error).message.split('\n')[0];
            log(msg);
            if (pandasInput.rows > PANDAS_FALLBACK_ROWS && samples.get(job.key)!.length === 0) {
              pandasReason = `it did not finish at ${int(pandasInput.rows)} rows`;
              notes.push(`pandas + pandera failed at ${int(pandasInput.rows)} rows (${msg}); it was rerun at ${int(PANDAS_FALLBACK_ROWS)} rows and its throughput extrapolated.`);
              pandasInput = ensureInput(o.out, PANDAS_FALLBACK_ROWS, o.seed, o.hospitals, log, ctx.cli);
            } else {
              notes.push(`pandas + pandera failed (${msg}); no pandas result in this run.`);
              pandasInput = null;
            }
          }
        }
      }
    }
  }
  return { samples, pandasInput, pandasReason, notes };
}
