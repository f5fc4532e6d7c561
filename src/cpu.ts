/**
 * CPU time by thread, for the run summary's `cpu_ms`: the coordinator
 * thread, the worker threads while they work for a file, and the rest of
 * the process ("background") — mostly V8's background threads (optimising
 * compiler, concurrent marking and sweeping), plus worker start-up, a
 * failed attempt's work before a retry, and libuv's pool. It says where the cores went:
 * work on the coordinator or in the background is work two workers cannot
 * share (docs/PERFORMANCE.md, "Scaling with workers").
 *
 * Thread times come from /proc/thread-self/schedstat (Linux: nanoseconds
 * on a CPU), or /proc/thread-self/stat (10 ms ticks) where the kernel keeps
 * no scheduler statistics; elsewhere they are unknown and the summary
 * leaves `cpu_ms` out.
 */
import { readFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';

/** A worker's thread CPU clock (ms) when it started and finished one task. */
export interface TaskCpu {
  readonly thread: number;
  readonly startMs: number;
  readonly endMs: number;
}

export interface CpuTotals {
  readonly coordinator: number;
  readonly workers: number;
  readonly background: number;
}

/**
 * CPU time the calling thread has used so far (ms), or null where the
 * system does not say. The source is chosen once per thread: schedstat when
 * it counts (a kernel can keep the file but write zeros when its scheduler
 * statistics are off), else stat, else none.
 */
export const threadCpuMs: () => number | null = (() => {
  const ns = schedstatMs();
  if (ns !== null && ns > 0) return schedstatMs;
  if (statMs() !== null) return statMs;
  return () => null;
})();

/** Each source of `threadCpuMs` on its own (the tests compare them). */
export const threadClocks = { schedstat: schedstatMs, stat: statMs };

/** Nanoseconds on a CPU, from the scheduler's statistics (kernels built with them, most). */
function schedstatMs(): number | null {
  try {
    const s = readFileSync('/proc/thread-self/schedstat', 'latin1');
    const ns = Number(s.slice(0, s.indexOf(' ')));
    return Number.isFinite(ns) ? ns / 1e6 : null;
  } catch {
    return null;
  }
}

/** User + system time in clock ticks (USER_HZ, 100 a second on Linux): coarser, always there. */
function statMs(): number | null {
  try {
    const s = readFileSync('/proc/thread-self/stat', 'latin1');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? ticks * 10 : null;
  } catch {
    return null;
  }
}

/** Runs a worker task and records the thread's CPU clock around it (`cpu` stays unset where unknown). */
export function withTaskCpu<T extends object>(task: () => T): T & { cpu?: TaskCpu } {
  const startMs = threadCpuMs();
  const result = task() as T & { cpu?: TaskCpu };
  const endMs = startMs === null ? null : threadCpuMs();
  if (startMs !== null && endMs !== null) result.cpu = { thread: threadId, startMs, endMs };
  return result;
}

/**
 * The CPU a file's processing used, split by thread. Started when the file
 * starts; every task result's `TaskCpu` is added. A worker thread counts
 * from the start of its first task for the file to the end of its last
 * (so the sending of results in between is included).
 */
export class CpuAccount {
  private readonly coordinator0 = threadCpuMs();
  private readonly process0 = process.cpuUsage();
  private readonly spans = new Map<number, { start: number; end: number }>();
  private complete = true;

  /** Adds one task's CPU clock readings (a task without them makes the worker total unknown). */
  add(cpu: TaskCpu | undefined): void {
    if (!cpu) {
      this.complete = false;
      return;
    }
    const s = this.spans.get(cpu.thread);
    if (!s) this.spans.set(cpu.thread, { start: cpu.startMs, end: cpu.endMs });
    else {
      s.start = Math.min(s.start, cpu.startMs);
      s.end = Math.max(s.end, cpu.endMs);
    }
  }

  /** ms of CPU since the start: coordinator, workers, and the rest of the process; null when unknown. */
  totals(): CpuTotals | null {
    const now = threadCpuMs();
    if (this.coordinator0 === null || now === null || !this.complete) return null;
    const p = process.cpuUsage(this.process0);
    const all = (p.user + p.system) / 1000;
    const coordinator = now - this.coordinator0;
    let workers = 0;
    for (const s of this.spans.values()) workers += s.end - s.start;
    // The process counter ticks coarser than the thread clocks: never report less than nothing.
    const background = Math.max(0, all - coordinator - workers);
    const r = (ms: number) => Math.round(ms);
    return { coordinator: r(coordinator), workers: r(workers), background: r(background) };
  }
}
