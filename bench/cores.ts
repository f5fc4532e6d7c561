/**
 * What this machine gives a second thread: the reference for the scaling
 * target (2 workers vs 1). The same fixed work runs on one thread alone,
 * then on N threads at once (each doing that work); the ratio
 * N × (time alone) ÷ (time together) is the throughput N threads get over
 * one on this machine. Perfect hardware gives N; a shared or virtual
 * machine gives less (cores that share caches, memory bandwidth or a
 * physical core, a host that slows busy guests), and no program scales
 * better than its own kind of work does here.
 *
 * Two kernels, as the engine does both kinds of work:
 *   compute  integer arithmetic on a 4 KiB table (stays in the L1 cache)
 *   memory   random read-modify-write over 64 MiB (cache and TLB misses,
 *            like the dictionary and duplicate-filter probes)
 *
 * Alone and together alternate for `rounds` rounds (each pair close in
 * time, so a slow spell of the shared host hits both); the round with the
 * median ratio is reported, with every round's times. Each thread reads its own CPU clock
 * (/proc/thread-self/schedstat, src/cpu.ts), so a thread that waited for
 * a core shows as wall time above its CPU time.
 *
 * Usage: node dist/bench/cores.js [--threads N] [--steps S] [--rounds R]  (defaults 2, 150000000, 3)
 *   → one JSON line (CoresResult)
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { threadCpuMs } from '../src/cpu.js';
import { median, medianIndex } from './lib/format.js';

export const KERNELS = ['compute', 'memory'] as const;
export type Kernel = (typeof KERNELS)[number];

/** Table sizes in 32-bit words: 4 KiB (L1) and 64 MiB (far beyond the caches). */
const WORDS: Record<Kernel, number> = { compute: 1 << 10, memory: 1 << 24 };
/** The memory kernel does fewer steps: each is a cache miss, several times a compute step (both run about a second at the default). */
const STEP_SHARE: Record<Kernel, number> = { compute: 1, memory: 1 / 4 };

/**
 * The kernel itself: `steps` pseudo-random read-modify-writes into `a`
 * (zeros, a power-of-two length). Returns a checksum, the same for the same
 * arguments on every thread, so a caller can tell that each thread did the
 * same work. The caller allocates the table and touches its pages first:
 * page faults are the kernel's work (and contend between threads of one
 * process), not the memory access this measures.
 */
export function kernel(a: Int32Array, steps: number): number {
  const mask = a.length - 1;
  let x = 1;
  let s = 0;
  for (let i = 0; i < steps; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) | 0;
    const k = (x >>> 7) & mask;
    s = (s + a[k]) | 0;
    a[k] = s ^ x;
  }
  return s;
}

export interface KernelRun {
  /** Wall ms of each thread (one entry when alone). */
  readonly wallMs: readonly number[];
  /** CPU ms of each thread (null where the OS has no thread clock). */
  readonly cpuMs: readonly (number | null)[];
  readonly checksums: readonly number[];
}

export interface KernelResult {
  readonly kernel: Kernel;
  readonly steps: number;
  /** Every round, in order. */
  readonly rounds: readonly Round[];
  /** The median round (by its ratio; the lower middle for an even count): its wall times, CPU times and N × alone ÷ together, the throughput N threads get over one. */
  readonly aloneMs: number;
  readonly togetherMs: number;
  readonly scaling: number;
  readonly aloneCpuMs: number | null;
  readonly togetherCpuMs: number | null;
}

/** One round: one thread alone, then N at once (wall ms of the slowest; CPU ms of a thread, the median of the N; null without a thread clock). */
export interface Round {
  readonly aloneMs: number;
  readonly togetherMs: number;
  readonly aloneCpuMs: number | null;
  readonly togetherCpuMs: number | null;
}

export interface CoresResult {
  readonly threads: number;
  readonly rounds: number;
  readonly kernels: readonly KernelResult[];
}

interface Job {
  readonly words: number;
  readonly steps: number;
}

/**
 * Runs the kernel on `n` fresh threads at once; resolves with each one's
 * wall, CPU and checksum. Every thread starts its isolate and touches its
 * table first; the kernels start together once all are ready, so one
 * thread's start-up does not eat into another's measured time.
 */
async function onThreads(n: number, job: Job): Promise<KernelRun> {
  const workers = Array.from({ length: n }, () => new Worker(new URL(import.meta.url), { workerData: { coresJob: job } }));
  try {
    const next = (w: Worker) =>
      new Promise<unknown>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
    await Promise.all(workers.map(next)); // ready
    const done = workers.map(next);
    for (const w of workers) w.postMessage('go');
    const r = (await Promise.all(done)) as { wall: number; cpu: number | null; sum: number }[];
    return { wallMs: r.map((x) => x.wall), cpuMs: r.map((x) => x.cpu), checksums: r.map((x) => x.sum) };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

const medianOrNull = (xs: readonly (number | null)[]): number | null => (xs.every((x) => x !== null) && xs.length ? median(xs as number[]) : null);

/** Measures both kernels: alone vs `threads` at once, alternating, `rounds` times. */
export async function measureCores(threads: number, steps: number, rounds: number): Promise<CoresResult> {
  const kernels: KernelResult[] = [];
  for (const k of KERNELS) {
    const job = { words: WORDS[k], steps: Math.max(1, Math.round(steps * STEP_SHARE[k])) };
    const alone: KernelRun[] = [];
    const together: KernelRun[] = [];
    for (let r = 0; r < rounds; r++) {
      alone.push(await onThreads(1, job));
      together.push(await onThreads(threads, job));
    }
    const sums = new Set([...alone, ...together].flatMap((run) => run.checksums));
    if (sums.size !== 1) throw new Error(`${k} kernel: threads disagree on the checksum (${[...sums].join(', ')})`);
    const slowest = (run: KernelRun) => Math.max(...run.wallMs);
    const each: Round[] = alone.map((a, i) => ({
      aloneMs: slowest(a),
      togetherMs: slowest(together[i]),
      aloneCpuMs: a.cpuMs[0],
      togetherCpuMs: medianOrNull(together[i].cpuMs),
    }));
    const ratioOf = (x: Round) => (threads * x.aloneMs) / x.togetherMs;
    const mid = each[medianIndex(each, ratioOf)];
    kernels.push({ kernel: k, steps: job.steps, rounds: each, ...mid, scaling: ratioOf(mid) });
  }
  return { threads, rounds, kernels };
}

const mine = isMainThread ? undefined : (workerData as { coresJob?: Job } | null)?.coresJob;
if (mine && parentPort) {
  const port = parentPort;
  const job = mine;
  const table = new Int32Array(job.words).fill(0);
  port.once('message', () => {
    const c0 = threadCpuMs();
    const t0 = performance.now();
    const sum = kernel(table, job.steps);
    const wall = performance.now() - t0;
    const c1 = threadCpuMs();
    port.postMessage({ wall, cpu: c0 === null || c1 === null ? null : c1 - c0, sum });
  });
  port.postMessage('ready');
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const num = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  const main = async () => {
    const { values } = parseArgs({
      options: { threads: { type: 'string', default: '2' }, steps: { type: 'string', default: '150000000' }, rounds: { type: 'string', default: '3' } },
    });
    return measureCores(num('threads', values.threads), num('steps', values.steps), num('rounds', values.rounds));
  };
  main().then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (e: unknown) => {
      process.stderr.write(`cores: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
