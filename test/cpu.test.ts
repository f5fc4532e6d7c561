/**
 * Thread CPU accounting (src/cpu.ts): the clock is the calling thread's
 * own, and a file's account sums each worker thread's span once. Busy
 * loops run until a thread's own clock has moved, not for a wall time, so
 * a crowded machine (other test files, other threads) slows them down
 * without failing them.
 */
import { threadId, Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { CpuAccount, threadClocks, threadCpuMs, type TaskCpu, withTaskCpu } from '../src/cpu.js';

/** Source of `spinCpu` for a worker's eval (the same loop, on its own clock). */
const SPIN = `
  const fs = require('node:fs');
  const clock = () => { const s = fs.readFileSync('/proc/thread-self/schedstat', 'latin1'); return Number(s.slice(0, s.indexOf(' '))) / 1e6; };
  function spinCpu(ms) { const c0 = clock(), w0 = Date.now(); let x = 0; while (clock() - c0 < ms && Date.now() - w0 < 20000) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i); return clock() - c0; }`;

/** Keeps this thread busy until its own CPU clock has moved `ms` (or 20 s have passed); returns the wall time it took. */
function spinCpu(ms: number): number {
  const c0 = threadCpuMs()!;
  const w0 = performance.now();
  let x = 0;
  while (threadCpuMs()! - c0 < ms && performance.now() - w0 < 20_000) for (let i = 0; i < 1e4; i++) x += Math.sqrt(i);
  if (x < 0) throw new Error('unreachable');
  return performance.now() - w0;
}

const linux = threadCpuMs() !== null;

describe.skipIf(!linux)('threadCpuMs', () => {
  it('moves only while this thread runs: never faster than the wall clock', () => {
    const c0 = threadCpuMs()!;
    const wall = spinCpu(100);
    const used = threadCpuMs()! - c0;
    expect(used).toBeGreaterThanOrEqual(100);
    expect(used).toBeLessThanOrEqual(wall + 1);
  });

  it("is a thread's own clock: another thread's work does not move it", async () => {
    // This thread blocks while a worker burns 150 ms of its own CPU.
    const w = new Worker(`${SPIN}\nconst { parentPort } = require('node:worker_threads');\nparentPort.once('message', (sab) => { const f = new Int32Array(sab); const used = spinCpu(150); Atomics.store(f, 0, 1); Atomics.notify(f, 0); parentPort.postMessage(used); });`, { eval: true });
    await new Promise((resolve) => w.once('online', resolve));
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const theirs = new Promise<number>((resolve) => w.once('message', resolve));
    const c0 = threadCpuMs()!;
    w.postMessage(flag.buffer);
    Atomics.wait(flag, 0, 0, 30_000);
    const mine = threadCpuMs()! - c0;
    const used = await theirs;
    await w.terminate();
    expect(used).toBeGreaterThanOrEqual(150);
    expect(mine).toBeLessThan(30);
  });

  it('has a coarse fallback (10 ms ticks) that agrees with the nanosecond clock', () => {
    const n0 = threadClocks.schedstat()!;
    const t0 = threadClocks.stat()!;
    spinCpu(300);
    const ns = threadClocks.schedstat()! - n0;
    const ticks = threadClocks.stat()! - t0;
    // The tick clock samples at each tick: a few ticks either way.
    expect(Math.abs(ticks - ns)).toBeLessThanOrEqual(40);
  });
});

describe.skipIf(!linux)('withTaskCpu', () => {
  it('records the clock before and after the task, with the thread', () => {
    const r = withTaskCpu(() => {
      spinCpu(30);
      return { kind: 'x' };
    });
    expect(r.kind).toBe('x');
    expect(r.cpu!.thread).toBe(threadId);
    expect(r.cpu!.endMs - r.cpu!.startMs).toBeGreaterThanOrEqual(30);
  });
});

describe.skipIf(!linux)('CpuAccount', () => {
  const task = (thread: number, startMs: number, endMs: number): TaskCpu => ({ thread, startMs, endMs });

  it.each([
    { name: 'one task', tasks: [task(1, 100, 130)], workers: 30 },
    { name: 'a thread counts from its first task to its last', tasks: [task(1, 100, 130), task(1, 150, 170)], workers: 70 },
    { name: 'tasks may arrive out of order', tasks: [task(1, 150, 170), task(1, 100, 130)], workers: 70 },
    { name: 'threads add up', tasks: [task(1, 100, 130), task(2, 5, 25), task(1, 140, 160), task(2, 30, 35)], workers: 90 },
    { name: 'no task', tasks: [], workers: 0 },
  ])('workers: $name', ({ tasks, workers }) => {
    const a = new CpuAccount();
    for (const t of tasks) a.add(t);
    expect(a.totals()!.workers).toBe(workers);
  });

  it("counts the coordinator thread's own work, and never less than nothing in the background", () => {
    const a = new CpuAccount();
    spinCpu(60);
    // A worker span larger than anything the process used: the background would go negative.
    a.add(task(7, 0, 1e6));
    const t = a.totals()!;
    expect(t.coordinator).toBeGreaterThanOrEqual(59);
    expect(t.workers).toBe(1e6);
    expect(t.background).toBe(0);
  });

  it('puts work on threads that report no task (V8 background threads, here a stand-in) in the background', async () => {
    const a = new CpuAccount();
    const w = new Worker(`${SPIN}\nrequire('node:worker_threads').parentPort.postMessage(spinCpu(150));`, { eval: true });
    await new Promise((resolve) => w.once('message', resolve));
    await w.terminate();
    const t = a.totals()!;
    expect(t.workers).toBe(0);
    // process.cpuUsage ticks coarser than the thread clocks: most of the 150 ms.
    expect(t.background).toBeGreaterThan(100);
    expect(t.background).toBeGreaterThan(t.coordinator);
  });

  it('is unknown when a task came back without clock readings', () => {
    const a = new CpuAccount();
    a.add(task(1, 0, 10));
    a.add(undefined);
    expect(a.totals()).toBeNull();
  });
});
