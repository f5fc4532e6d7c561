/**
 * Thread CPU accounting (src/cpu.ts): the clock is the calling thread's
 * own, and a file's account sums each worker thread's span once.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { CpuAccount, threadClocks, threadCpuMs, type TaskCpu, withTaskCpu } from '../src/cpu.js';

/** Keeps this thread on a CPU for `ms` of wall time. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  if (x < 0) throw new Error('unreachable');
}

describe('threadCpuMs', () => {
  it('counts the time this thread spends on a CPU', () => {
    const c0 = threadCpuMs()!;
    const w0 = performance.now();
    spin(150);
    const used = threadCpuMs()! - c0;
    const wall = performance.now() - w0;
    // On a CPU most of the time (a shared machine may take some away), never more than the wall time.
    expect(used).toBeGreaterThan(50);
    expect(used).toBeLessThanOrEqual(wall + 1);
  });

  it('has a coarse fallback (10 ms ticks) that agrees with the nanosecond clock', () => {
    const n0 = threadClocks.schedstat()!;
    const t0 = threadClocks.stat()!;
    spin(300);
    const ns = threadClocks.schedstat()! - n0;
    const ticks = threadClocks.stat()! - t0;
    expect(ticks % 10).toBe(0);
    // The tick clock samples at each tick: a few ticks either way.
    expect(Math.abs(ticks - ns)).toBeLessThanOrEqual(40);
  });

  it("is a thread's own clock: another thread's work does not move it", async () => {
    // The worker reads its clock, waits while this thread spins, reads it again.
    const src = `
      const { parentPort } = require('node:worker_threads');
      const fs = require('node:fs');
      const clock = () => { const s = fs.readFileSync('/proc/thread-self/schedstat', 'latin1'); return Number(s.slice(0, s.indexOf(' '))) / 1e6; };
      parentPort.once('message', (sab) => {
        const flag = new Int32Array(sab);
        const c0 = clock();
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
        Atomics.wait(flag, 0, 1);
        parentPort.postMessage(clock() - c0);
      });`;
    const w = new Worker(src, { eval: true });
    const sab = new SharedArrayBuffer(4);
    const flag = new Int32Array(sab);
    const waited = new Promise<number>((resolve) => w.once('message', resolve));
    w.postMessage(sab);
    while (Atomics.load(flag, 0) !== 1) await new Promise((r) => setTimeout(r, 1));
    const c0 = threadCpuMs()!;
    spin(150);
    const mine = threadCpuMs()! - c0;
    Atomics.store(flag, 0, 2);
    Atomics.notify(flag, 0);
    const theirs = await waited;
    await w.terminate();
    expect(mine).toBeGreaterThan(50);
    expect(theirs).toBeLessThan(mine / 4);
  });
});

describe('withTaskCpu', () => {
  it('records the clock before and after the task, with the thread', () => {
    const r = withTaskCpu(() => {
      spin(60);
      return { kind: 'x' };
    });
    expect(r.kind).toBe('x');
    expect(r.cpu!.thread).toBe(0); // the main thread's threadId
    expect(r.cpu!.endMs - r.cpu!.startMs).toBeGreaterThan(20);
  });
});

describe('CpuAccount', () => {
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
    spin(120);
    // A worker span larger than anything the process used: the background would go negative.
    a.add(task(7, 0, 1e6));
    const t = a.totals()!;
    expect(t.coordinator).toBeGreaterThan(40);
    expect(t.workers).toBe(1e6);
    expect(t.background).toBe(0);
  });

  it('puts work on threads that report no task (V8 background threads, here a stand-in) in the background', async () => {
    const a = new CpuAccount();
    const w = new Worker(`const end = performance.now() + 200; let x = 0; while (performance.now() < end) x += Math.sqrt(x + 1); require('node:worker_threads').parentPort.postMessage(x > 0);`, { eval: true });
    await new Promise((resolve) => w.once('message', resolve));
    await w.terminate();
    const t = a.totals()!;
    expect(t.workers).toBe(0);
    expect(t.background).toBeGreaterThan(80);
    expect(t.background).toBeGreaterThan(t.coordinator);
  });

  it('is unknown when a task came back without clock readings', () => {
    const a = new CpuAccount();
    a.add(task(1, 0, 10));
    a.add(undefined);
    expect(a.totals()).toBeNull();
  });
});
