import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DuplicateFilter, filterBits } from '../src/merge/dedupe.js';

const dir = mkdtempSync(join(tmpdir(), 'hcp-dedupe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const filter = (bits: number) => new DuplicateFilter(bits, join(dir, `log-${n++}.bin`));

/**
 * Runs fingerprints through the filter as the coordinator does: suspects
 * are held, then `resolve` says which repeat an earlier row. Returns, per
 * row, whether it was dropped as a duplicate.
 */
function dropped(f: DuplicateFilter, fps: [number, number][]): boolean[] {
  const suspects: number[] = [];
  fps.forEach(([hi, lo], i) => {
    if (f.suspect(hi, lo)) suspects.push(i);
  });
  const dup = f.resolve();
  f.close();
  const out = fps.map(() => false);
  suspects.forEach((row, s) => (out[row] = dup[s] === 1));
  return out;
}

/** The contract, the obvious way: a row is dropped when an earlier row has the same fingerprint. */
const reference = (fps: [number, number][]) => {
  const seen = new Set<string>();
  return fps.map(([hi, lo]) => {
    const k = `${hi}:${lo}`;
    const dup = seen.has(k);
    seen.add(k);
    return dup;
  });
};

const word = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 0xffffffff }));

describe('DuplicateFilter drops exactly the later copies, first occurrence kept', () => {
  it.each([
    ['a tiny filter (512 bits: almost every row a suspect)', 512],
    ['a small filter (64 Kbit: some false positives)', 1 << 16],
    ['the smallest production size', filterBits(0)],
  ])('%s, against a set of every fingerprint', (_name, bits) => {
    fc.assert(
      fc.property(fc.array(fc.tuple(word, word), { maxLength: 600 }), (fps) => {
        expect(dropped(filter(bits), fps)).toEqual(reference(fps));
      }),
      { numRuns: 150 },
    );
  });

  it('through several log flushes (more rows than one log buffer), with repeats far apart', () => {
    const rows = 200_000;
    const fps: [number, number][] = [];
    for (let i = 0; i < rows; i++) fps.push([Math.imul(i, 2654435761) >>> 0, i % 3 === 0 && i > 150_000 ? (i - 150_000) * 7 : i * 7]);
    const f = filter(1 << 12); // far too small on purpose: many false positives to resolve
    expect(dropped(f, fps)).toEqual(reference(fps));
  });

  it('a new fingerprint is never a suspect in an empty filter; a repeat always is', () => {
    const f = filter(1 << 20);
    expect(f.suspect(1, 2)).toBe(false);
    expect(f.suspect(1, 2)).toBe(true);
    expect(f.suspect(0, 0)).toBe(false);
    expect(f.suspect(0, 0)).toBe(true);
    expect(f.rows).toBe(4);
    expect(Array.from(f.resolve())).toEqual([1, 1]);
    f.close();
  });
});

describe('DuplicateFilter.scan (rows of a chunk at once)', () => {
  it.each([
    ['a tiny filter', 512],
    ['a small filter', 1 << 16],
  ])('%s: the same suspects and the same drops as suspect() row by row, whatever the chunk cuts', (_name, bits) => {
    fc.assert(
      fc.property(fc.array(fc.tuple(word, word), { maxLength: 400 }), fc.array(fc.nat(400), { maxLength: 6 }), (fps, cuts) => {
        const one = filter(bits);
        const expected: number[] = [];
        fps.forEach(([hi, lo], i) => one.suspect(hi, lo) && expected.push(i));
        const flat = Uint32Array.from(fps.flat());
        const many = filter(bits);
        const got: number[] = [];
        const bounds = [0, ...cuts.map((c) => Math.min(c, fps.length)).sort((a, b) => a - b), fps.length];
        for (let b = 1; b < bounds.length; b++) many.scan(flat, bounds[b - 1], bounds[b], got);
        expect(got).toEqual(expected);
        expect(many.rows).toBe(fps.length);
        expect(Array.from(many.resolve())).toEqual(Array.from(one.resolve()));
        one.close();
        many.close();
      }),
      { numRuns: 150 },
    );
  });

  it('keeps the fingerprint log whole across buffer flushes', () => {
    const rows = 150_000; // more than two log buffers
    const flat = new Uint32Array(2 * rows);
    for (let i = 0; i < rows; i++) {
      flat[2 * i] = Math.imul(i % 100_000, 2654435761) >>> 0;
      flat[2 * i + 1] = (i % 100_000) * 7;
    }
    const f = filter(1 << 20);
    const suspects: number[] = [];
    for (let at = 0; at < rows; at += 40_000) f.scan(flat, at, Math.min(rows, at + 40_000), suspects);
    const dup = f.resolve();
    f.close();
    // Rows 100,000 on repeat rows 0..49,999: each is a suspect and a duplicate; the rest are kept.
    const dropped = suspects.filter((_, s) => dup[s] === 1);
    expect(dropped).toEqual(Array.from({ length: 50_000 }, (_, k) => 100_000 + k));
  });
});

describe('DuplicateFilter.close', () => {
  it('gives the filter memory back at once, while the filter object is still referenced', async () => {
    const bits = 1 << 27; // 16 MB, the cap
    const f = filter(bits);
    f.scan(Uint32Array.of(1, 2, 3, 4), 0, 2, []);
    const before = process.memoryUsage().arrayBuffers;
    f.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(process.memoryUsage().arrayBuffers).toBeLessThan(before - bits / 8 / 2);
    expect(f.rows).toBe(2);
  });
});

describe('filterBits', () => {
  it.each([
    [0, 1 << 20],
    [100_000, 1 << 21],
    [1_000_000, 1 << 24],
    [10_000_000, 1 << 27],
    [1e9, 1 << 27],
  ])('%i rows -> %i bits (about 16 a row, 1 Mbit to 16 MB)', (rows, bits) => {
    expect(filterBits(rows)).toBe(bits);
  });

  it('rejects a size that is not a power of two', () => {
    expect(() => filter(1000)).toThrow(/power of two/);
  });
});
