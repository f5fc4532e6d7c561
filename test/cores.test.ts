import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { kernel } from '../bench/cores.js';

/** The cores reference (bench/cores.ts): the machine's own scaling, the yardstick for "2 workers vs 1". */
describe('cores reference kernel', () => {
  it('does the same work for the same arguments (the checksum tells threads apart only when their work differs)', () => {
    const t = (words: number) => new Int32Array(words);
    expect(kernel(t(1 << 10), 10_000)).toBe(kernel(t(1 << 10), 10_000));
    expect(kernel(t(1 << 10), 10_000)).not.toBe(kernel(t(1 << 10), 10_001));
    expect(kernel(t(1 << 12), 10_000)).not.toBe(kernel(t(1 << 10), 10_000));
  });

  it('matches a plain re-implementation of its steps', () => {
    // Independent: the same linear congruential walk written with BigInt arithmetic.
    const words = 64;
    const steps = 1000;
    const a = new Array<bigint>(words).fill(0n);
    let x = 1n;
    let s = 0n;
    const i32 = (v: bigint) => BigInt.asIntN(32, v);
    for (let i = 0; i < steps; i++) {
      x = i32(x * 1664525n + 1013904223n);
      const k = Number((BigInt.asUintN(32, x) >> 7n) & BigInt(words - 1));
      s = i32(s + a[k]);
      a[k] = i32(s ^ x);
    }
    expect(kernel(new Int32Array(words), steps)).toBe(Number(s));
  });
});

describe('bench/cores.js', () => {
  beforeAll(() => {
    if (!existsSync('dist/bench/cores.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  });

  it('reports both kernels, alone and on N threads at once, with scaling = N × alone ÷ together per round', () => {
    const out = execFileSync(process.execPath, ['dist/bench/cores.js', '--threads', '2', '--steps', '400000', '--rounds', '1'], { encoding: 'utf8' });
    const r = JSON.parse(out.trim());
    expect(r.threads).toBe(2);
    expect(r.rounds).toBe(1);
    expect(r.kernels.map((k: { kernel: string }) => k.kernel)).toEqual(['compute', 'memory']);
    for (const k of r.kernels) {
      expect(k.rounds).toHaveLength(1);
      expect(k.aloneMs).toBeGreaterThan(0);
      expect(k.togetherMs).toBeGreaterThan(0);
      // One round: the reported round is that one, and scaling is its ratio.
      expect(k.rounds[0]).toEqual({ aloneMs: k.aloneMs, togetherMs: k.togetherMs, aloneCpuMs: k.aloneCpuMs, togetherCpuMs: k.togetherCpuMs });
      expect(k.scaling).toBeCloseTo((2 * k.aloneMs) / k.togetherMs, 9);
    }
    // The memory kernel does a quarter of the steps (each is a cache miss).
    expect(r.kernels[1].steps).toBe(100_000);
  });

  it('reports the round with the median ratio, with every round', () => {
    const out = execFileSync(process.execPath, ['dist/bench/cores.js', '--threads', '2', '--steps', '200000', '--rounds', '3'], { encoding: 'utf8' });
    for (const k of JSON.parse(out.trim()).kernels) {
      expect(k.rounds).toHaveLength(3);
      const ratios = k.rounds.map((x: { aloneMs: number; togetherMs: number }) => (2 * x.aloneMs) / x.togetherMs).sort((a: number, b: number) => a - b);
      expect(k.scaling).toBeCloseTo(ratios[1], 9);
      expect(k.rounds).toContainEqual({ aloneMs: k.aloneMs, togetherMs: k.togetherMs, aloneCpuMs: k.aloneCpuMs, togetherCpuMs: k.togetherCpuMs });
    }
  });

  it.each([
    [['--threads', '0'], /--threads must be a positive integer, got 0/],
    [['--steps', 'many'], /--steps must be a positive integer, got many/],
  ])('refuses %j with a clear message and exit code 1', (args, message) => {
    let err: { status: number; stderr: string } | null = null;
    try {
      execFileSync(process.execPath, ['dist/bench/cores.js', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      err = e as { status: number; stderr: string };
    }
    expect(err?.status).toBe(1);
    expect(err?.stderr).toMatch(message);
    expect(err?.stderr).not.toMatch(/\n\s+at /);
  });
});
