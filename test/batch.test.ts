import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchBuilder, Bitset, type ChunkIds, NO_PENDING, SpillLog, UnitIds, type RowSource } from '../src/merge/batch.js';
import { BufferRecycler, FREE_NOW_MIN_BYTES, freeNow } from '../src/merge/recycle.js';
import { type Batch, PENDING } from '../src/types.js';

const dir = mkdtempSync(join(tmpdir(), 'hcp-batch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const UNITS = ['bpm', 'mmHg', '°C', '°F', 'kg', 'lb'];

interface Row {
  day: number;
  measure: number;
  flag: number;
  unit: string;
  value: number;
  ref: [number, number];
  patient: number;
  src: number;
}

const row = fc.record({
  day: fc.integer({ min: 19000, max: 20000 }),
  measure: fc.integer({ min: 0, max: 11 }),
  flag: fc.integer({ min: 0, max: 3 }),
  unit: fc.constantFrom(...UNITS),
  value: fc.double({ noNaN: true, min: -1e6, max: 1e6 }),
  ref: fc.tuple(fc.double({ noNaN: true }), fc.double({ noNaN: true })),
  patient: fc.integer({ min: 0, max: 1000 }),
  src: fc.integer({ min: 0, max: 1 << 20 }),
});

/** A chunk result holding `rows`, with its own unit dictionary (as a worker builds one per chunk). */
function source(rows: Row[]): RowSource & { units: string[] } {
  const units: string[] = [];
  const unitOf = (u: string) => (units.includes(u) ? units.indexOf(u) : units.push(u) - 1);
  return {
    units,
    day: Int32Array.from(rows, (r) => r.day),
    code: Uint32Array.from(rows, (r) => r.measure | (r.flag << 8) | (unitOf(r.unit) << 16)),
    value: Float64Array.from(rows, (r) => r.value),
    ref: Float64Array.from(rows.flatMap((r) => r.ref)),
    patient: Uint32Array.from(rows, (r) => r.patient),
    srcValue: Uint32Array.from(rows, (r) => r.src),
  };
}

/** Appends a chunk's rows as the coordinator does: its units mapped onto the run's (the builder's). */
function append(builder: BatchBuilder, units: UnitIds, chunk: RowSource & { units: string[] }, from: number, to: number, drop: number[] | null, ids: ChunkIds): void {
  builder.append(chunk, from, to, drop, ids, units.map(chunk.units));
}

/** What a batch says, row by row, with units spelled out (independent of how the builder numbered them). */
function decode(b: Batch, labs: boolean): Row[] {
  return Array.from({ length: b.n }, (_, i) => ({
    day: b.day[i],
    measure: b.code[i] & 0xff,
    flag: (b.code[i] >>> 8) & 0xff,
    unit: b.units[b.code[i] >>> 16],
    value: b.value[i],
    ref: (labs ? [b.ref[2 * i], b.ref[2 * i + 1]] : [0, 0]) as [number, number],
    patient: b.patient[i],
    src: b.srcValue[i],
  }));
}


describe('BatchBuilder spill', () => {
  it.each([
    ['vitals', false],
    ['labs', true],
  ])('%s: spilling at any points gives the same batch as keeping every row in memory, twice in a row, with or without recycled buffers', (_, labs) => {
    fc.assert(
      fc.property(
        // Chunks of rows; per chunk, whether the builder spills after it.
        fc.array(fc.tuple(fc.array(row, { maxLength: 40 }), fc.boolean()), { minLength: 1, maxLength: 12 }),
        // Recycled buffers (byte sizes) to take columns from, or none; they are full of junk.
        fc.option(fc.array(fc.integer({ min: 1, max: 6000 }), { maxLength: 10 }), { nil: null }),
        (chunks, recycled) => {
          const log = new SpillLog(join(dir, `spill-${files++}.bin`));
          const units = new UnitIds();
          const builder = new BatchBuilder('H001', '2024-01', labs, units, log);
          // Two rounds: after take(), the builder starts empty and may spill again.
          for (let round = 0; round < 2; round++) {
            const expected: Row[] = [];
            for (const [rows, spill] of chunks) {
              append(builder, units, source(rows), 0, rows.length, null, NO_PENDING);
              expected.push(...rows.map((r) => ({ ...r, ref: (labs ? r.ref : [0, 0]) as [number, number] })));
              if (spill) builder.spill();
              expect(builder.pending).toBe(expected.length);
            }
            const recycler = recycled && new BufferRecycler(recycled.length);
            recycler?.give(recycled!.map((size) => new Uint8Array(size).fill(0xab).buffer));
            const batch = builder.take(recycler);
            expect(batch.n).toBe(expected.length);
            expect(decode(batch, labs)).toEqual(expected);
            // Right-sized columns.
            expect(batch.day.length).toBe(expected.length);
            expect(batch.ref.length).toBe(labs ? 2 * expected.length : 0);
            expect(builder.pending).toBe(0);
          }
          // The log exists once rows were spilled (a spill with rows in memory), and closing it removes it.
          let inMemory = 0;
          let spilled = false;
          for (const [rows, spill] of chunks) {
            inMemory += rows.length;
            if (spill && inMemory > 0) [spilled, inMemory] = [true, 0];
          }
          expect(existsSync(log.path)).toBe(spilled);
          log.close();
          expect(existsSync(log.path)).toBe(false);
        },
      ),
      { numRuns: 150, interruptAfterTimeLimit: 30_000, markInterruptAsFailure: true },
    );
  });

  it('several builders sharing one spill log, spills interleaved and batches taken at any point: each batch is its own rows, in order', () => {
    fc.assert(
      fc.property(
        // Steps: which builder gets a chunk of rows, whether it spills after it, and whether its batch is taken then.
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.array(row, { maxLength: 30 }), fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 40 }),
        (steps) => {
          const log = new SpillLog(join(dir, `spill-${files++}.bin`));
          const units = new UnitIds();
          const builders = Array.from({ length: 5 }, () => new BatchBuilder('H001', '2024-01', false, units, log));
          const expected: Row[][] = builders.map(() => []);
          // Per builder: rows in memory, and whether it has rows in the log.
          const inMemory = builders.map(() => 0);
          const inLog = builders.map(() => false);
          const check = (b: number) => {
            expect(decode(builders[b].take(), false)).toEqual(expected[b]);
            expected[b] = [];
            inMemory[b] = 0;
            inLog[b] = false;
            // Once nothing waits in the log, it is emptied.
            if (!inLog.some(Boolean) && existsSync(log.path)) expect(statSync(log.path).size).toBe(0);
          };
          for (const [b, rows, spill, take] of steps) {
            append(builders[b], units, source(rows), 0, rows.length, null, NO_PENDING);
            expected[b].push(...rows.map((r) => ({ ...r, ref: [0, 0] as [number, number] })));
            inMemory[b] += rows.length;
            if (spill) {
              builders[b].spill();
              if (inMemory[b] > 0) [inLog[b], inMemory[b]] = [true, 0];
            }
            if (take) check(b);
          }
          builders.forEach((_, b) => check(b));
          log.close();
          expect(existsSync(log.path)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('skips dropped rows on the way in, whether they end up spilled or not', () => {
    const rows: Row[] = Array.from({ length: 10 }, (_, i) => ({ day: 19000 + i, measure: i % 3, flag: 0, unit: UNITS[i % 2], value: i, ref: [0, 0], patient: i, src: 100 + i }));
    const units = new UnitIds();
    const log = new SpillLog(join(dir, `spill-${files++}.bin`));
    const builder = new BatchBuilder('H001', '2024-01', false, units, log);
    append(builder, units, source(rows.slice(0, 5)), 0, 5, [1, 3], NO_PENDING);
    builder.spill();
    append(builder, units, source(rows.slice(5)), 0, 5, [0], NO_PENDING);
    const got = decode(builder.take(), false).map((r) => r.value);
    expect(got).toEqual([0, 2, 4, 6, 7, 8, 9]);
    log.close();
  });

  it('has nowhere to spill without a spill log', () => {
    const units = new UnitIds();
    const builder = new BatchBuilder('H001', '2024-01', false, units);
    append(builder, units, source([{ day: 19000, measure: 0, flag: 0, unit: 'bpm', value: 1, ref: [0, 0], patient: 0, src: 0 }]), 0, 1, null, NO_PENDING);
    expect(() => builder.spill()).toThrow(/no spill log/);
  });
});

describe('BatchBuilder.append', () => {
  it.each([
    ['vitals', false],
    ['labs', true],
  ])('%s: rows [from, to) without the dropped ones, references to the chunk\'s new entries resolved to their published ids', (_, labs) => {
    fc.assert(
      fc.property(
        // Rows, each maybe referring to one of the chunk's new patients / values instead of a published one.
        // Up to 200 rows (fast-check's default size would keep them to a few): short and long ranges.
        fc.array(fc.tuple(row, fc.option(fc.nat(), { nil: null }), fc.option(fc.nat(), { nil: null })), { minLength: 1, maxLength: 200, size: 'max' }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 6 }),
        fc.tuple(fc.nat(), fc.nat()),
        // Now and then nothing dropped (fc.option's nil: the block copy), else a random mask (which may drop nothing in the range too).
        fc.option(fc.array(fc.boolean(), { maxLength: 200, size: 'max' }), { nil: [] as boolean[] }),
        // The chunk's unit numbers are the run's here (its first unit is the first row's): the caller may say so with no map.
        fc.boolean(),
        (spec, newPatients, newValues, [a, b], dropMask, noMap) => {
          const rows: Row[] = spec.map(([r, p, v]) => ({
            ...r,
            patient: p !== null && newPatients.length > 0 ? PENDING + (p % newPatients.length) : r.patient,
            src: v !== null && newValues.length > 0 ? PENDING + (v % newValues.length) : r.src,
          }));
          const from = Math.min(a, b) % (rows.length + 1);
          const to = Math.max(from, Math.max(a, b) % (rows.length + 1));
          const drop: number[] = [];
          for (let i = from; i < to; i++) if (dropMask[i]) drop.push(i);
          const ids = { patients: Uint32Array.from(newPatients), values: Uint32Array.from(newValues) };
          const units = new UnitIds();
          const builder = new BatchBuilder('H001', '2024-01', labs, units);
          // A row before the range, so the appended rows do not start at 0.
          append(builder, units, source(rows.slice(0, 1)), 0, 1, null, ids);
          const chunk = source(rows);
          const map = units.map(chunk.units);
          expect(map).toEqual(chunk.units.map((_, k) => k));
          builder.append(chunk, from, to, drop.length > 0 ? drop : null, ids, noMap ? null : map);
          const resolved = (x: number, published: number[]) => (x >= PENDING ? published[x - PENDING] : x);
          const expected = [rows[0], ...rows.slice(from, to).filter((_, k) => !dropMask[from + k])].map((r) => ({
            ...r,
            ref: (labs ? r.ref : [0, 0]) as [number, number],
            patient: resolved(r.patient, newPatients),
            src: resolved(r.src, newValues),
          }));
          expect(decode(builder.take(), labs)).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('Bitset', () => {
  it('or() of another set\'s words is the union, and count() its size', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 3000 })), fc.array(fc.nat({ max: 3000 })), (xs, ys) => {
        const a = new Bitset();
        for (const x of xs) a.add(x);
        const words = new Uint32Array(((Math.max(-1, ...ys) + 1) >>> 5) + 1);
        for (const y of ys) words[y >>> 5] |= 1 << (y & 31);
        a.or(words);
        expect(a.count()).toBe(new Set([...xs, ...ys]).size);
      }),
    );
  });
});

describe('BufferRecycler', () => {
  it('gives the smallest kept buffer big enough, each once, and a fresh array when none fits', () => {
    const r = new BufferRecycler(3);
    const [a, b, c, d] = [64, 16, 40, 8].map((n) => new ArrayBuffer(n));
    r.give([a, b, c, d]); // d is past the limit: not kept
    expect(r.size).toBe(3);
    const x = r.take(Float64Array, 4); // 32 bytes: c (40) is the smallest that fits
    expect(x.buffer).toBe(c);
    expect(x.length).toBe(4);
    const y = r.take(Int32Array, 4); // 16 bytes: b
    expect(y.buffer).toBe(b);
    const z = r.take(Uint32Array, 20); // 80 bytes: nothing fits
    expect(z.buffer).not.toBe(a);
    expect(z.length).toBe(20);
    expect(r.take(Uint32Array, 16).buffer).toBe(a);
    expect(r.size).toBe(0);
  });

  it('takeAny gives the largest kept buffer, each once, then null', () => {
    const r = new BufferRecycler(4);
    const [a, b, c] = [16, 64, 40].map((n) => new ArrayBuffer(n));
    r.give([a, b, c, new ArrayBuffer(0)]); // an empty buffer is never kept
    expect(r.size).toBe(3);
    expect([r.takeAny(), r.takeAny(), r.takeAny(), r.takeAny()]).toEqual([b, c, a, null]);
    expect(r.takeAny()).toBeNull();
  });

  it('frees now what it does not keep (past the limit): detached, while what it keeps stays whole', () => {
    const r = new BufferRecycler(1);
    const [kept, extra] = [2 * FREE_NOW_MIN_BYTES, FREE_NOW_MIN_BYTES].map((n) => new ArrayBuffer(n));
    r.give([kept, extra]);
    expect([kept.byteLength, extra.byteLength]).toEqual([2 * FREE_NOW_MIN_BYTES, 0]);
    expect(r.take(Uint8Array, 1).buffer).toBe(kept);
  });

  it('clear frees every kept buffer: detached, none kept, the next take allocates', () => {
    const r = new BufferRecycler(4);
    const kept = [FREE_NOW_MIN_BYTES, 2 * FREE_NOW_MIN_BYTES].map((n) => new ArrayBuffer(n));
    r.give(kept);
    r.clear();
    expect(r.size).toBe(0);
    expect(kept.map((b) => b.byteLength)).toEqual([0, 0]);
    expect(r.take(Uint8Array, 8).byteLength).toBe(8);
  });
});

describe('freeNow', () => {
  const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

  it('detaches buffers of at least FREE_NOW_MIN_BYTES and leaves smaller ones (the Buffer pool among them) alone', () => {
    const big = new ArrayBuffer(FREE_NOW_MIN_BYTES);
    const small = new ArrayBuffer(FREE_NOW_MIN_BYTES - 1);
    const pooled = Buffer.from('a small Buffer lives in the shared pool');
    freeNow([big, small, pooled.buffer as ArrayBuffer]);
    expect(big.byteLength).toBe(0);
    expect(small.byteLength).toBe(FREE_NOW_MIN_BYTES - 1);
    expect(pooled.toString()).toBe('a small Buffer lives in the shared pool');
    expect(Buffer.from('and the next one too').toString()).toBe('and the next one too');
  });

  it('gives the memory back while the buffer object is still referenced, so not by the garbage collector', async () => {
    const size = 64 << 20;
    const live = () => process.memoryUsage().arrayBuffers;
    const kept = new Uint8Array(size).fill(1); // control: referenced, not freed
    const freed = new Uint8Array(size).fill(1);
    const before = live();
    freeNow([freed.buffer]);
    await tick();
    expect(live()).toBeLessThan(before - size / 2);
    expect(live()).toBeGreaterThan(size / 2); // the control is still there
    expect(kept[size - 1] + freed.length).toBe(1);
  });
});
