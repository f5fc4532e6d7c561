/**
 * src/sketch: moments (Welford, a batch's two-pass sum, Chan's merge with the mean's rounding error), the quantile sketch (exact
 * histogram, then t-digest) against the SPEC §4 rank tolerance — single and
 * merged from many parts — determinism, JSON round trips, and MeasureSketch
 * merge = sketch of the union.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MeasureSketch } from '../src/sketch/measure.js';
import { addValue, emptyMoments, histogramMoments, mergeMoments, stddev, type Moments } from '../src/sketch/moments.js';
import { MAX_DISTINCT, QuantileSketch, QUANTILES } from '../src/sketch/quantiles.js';
import { TDigest } from '../src/sketch/tdigest.js';
import { close, exactMoments as exactMomentsBig, prng, rankError } from './helpers.js';

// ------------------------------------------------------------------ reference maths

/** Exact mean and sample stddev by two passes (Kahan-summed), the reference for 1e-9. */
function exactMoments(xs: number[]): { n: number; mean: number; sd: number | null } {
  const n = xs.length;
  let s = 0;
  let c = 0;
  for (const x of xs) {
    const y = x - c;
    const t = s + y;
    c = t - s - y;
    s = t;
  }
  const mean = s / n;
  let ss = 0;
  c = 0;
  for (const x of xs) {
    const y = (x - mean) * (x - mean) - c;
    const t = ss + y;
    c = t - ss - y;
    ss = t;
  }
  return { n, mean, sd: n < 2 ? null : Math.sqrt(ss / (n - 1)) };
}

const momentsOf = (xs: number[]): Moments => {
  const m = emptyMoments();
  for (const x of xs) addValue(m, x);
  return m;
};

/** A measurement-like value: up to 2 decimals, in a clinical range. */
const measurement = fc.integer({ min: -50_000, max: 500_000 }).map((i) => i / 100);

function expectMomentsClose(m: Moments, xs: number[]) {
  const ref = exactMoments(xs);
  const scale = Math.max(1, ...xs.map(Math.abs));
  expect(m.n).toBe(ref.n);
  expect(close(m.mean, ref.mean, 1e-9, 1e-12 * scale), `mean ${m.mean} vs ${ref.mean}`).toBe(true);
  const sd = stddev(m);
  if (ref.sd === null) expect(sd).toBeNull();
  else expect(close(sd!, ref.sd, 1e-9, 1e-12 * scale), `stddev ${sd} vs ${ref.sd}`).toBe(true);
}

// ------------------------------------------------------------------ moments

describe('moments', () => {
  it.each<[number[], number, number | null]>([
    [[], 0, null],
    [[5], 5, null],
    [[1, 2, 3, 4], 2.5, Math.sqrt(5 / 3)],
    [[2, 4, 4, 4, 5, 5, 7, 9], 5, Math.sqrt(32 / 7)],
    [[1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16], 1e9 + 10, Math.sqrt(30)],
  ])('%j → mean %d, stddev %d', (xs, mean, sd) => {
    const m = momentsOf(xs);
    expect(m.n).toBe(xs.length);
    if (xs.length) expect(close(m.mean, mean, 1e-12)).toBe(true);
    const s = stddev(m);
    if (sd === null) expect(s).toBeNull();
    else expect(close(s!, sd, 1e-9)).toBe(true);
  });

  it('property: merge(A, B) ≈ moments(A ∪ B) within 1e-9 relative', () => {
    fc.assert(
      fc.property(fc.array(measurement, { maxLength: 300 }), fc.array(measurement, { maxLength: 300 }), (a, b) => {
        fc.pre(a.length + b.length > 0);
        const m = momentsOf(a);
        mergeMoments(m, momentsOf(b));
        expectMomentsClose(m, [...a, ...b]);
      }),
      { numRuns: 300 },
    );
  });

  it('property: merging many parts in any grouping ≈ the whole', () => {
    fc.assert(
      fc.property(fc.array(fc.array(measurement, { maxLength: 60 }), { minLength: 1, maxLength: 50 }), (parts) => {
        const all = parts.flat();
        fc.pre(all.length > 0);
        const left = emptyMoments();
        for (const p of parts) mergeMoments(left, momentsOf(p));
        expectMomentsClose(left, all);
        // A tree of merges (pairs) gives the same within tolerance.
        let level = parts.map(momentsOf);
        while (level.length > 1) {
          const next: Moments[] = [];
          for (let i = 0; i < level.length; i += 2) {
            const m = { ...level[i] };
            if (i + 1 < level.length) mergeMoments(m, level[i + 1]);
            next.push(m);
          }
          level = next;
        }
        expectMomentsClose(level[0], all);
      }),
      { numRuns: 200 },
    );
  });

  /**
   * The ALL rollup of many small hospitals (a few rows each) whose values agree to 8 or more digits: each part's
   * mean is a rounded double, and the merge subtracts them. Parts as the engine makes them (histogramMoments of
   * each batch), merged left to right through a JSON round trip (sketch files), against the exact moments of
   * the union, 1e-9 relative and nothing absolute (SPEC §4).
   */
  it('property: many small parts with means equal to 8+ digits merge within 1e-9 relative of the exact moments', () => {
    const parts = fc
      .record({ base: fc.double({ min: 1, max: 500, noNaN: true }), step: fc.constantFrom(1e-9, 1e-7, 1e-6, 1e-5) })
      .chain(({ base, step }) =>
        fc.array(fc.array(fc.integer({ min: 0, max: 9 }).map((k) => base + k * step), { minLength: 1, maxLength: 5 }), { minLength: 2, maxLength: 300 }),
      );
    fc.assert(
      fc.property(parts, (ps) => {
        const all = emptyMoments();
        for (const p of ps) {
          const values = [...new Set(p)].sort((a, b) => a - b);
          const part = histogramMoments(values, values.map((v) => p.filter((x) => x === v).length), values.length);
          mergeMoments(all, JSON.parse(JSON.stringify(part)));
        }
        const want = exactMomentsBig(ps.flat());
        expect(all.n).toBe(want.n);
        expect(close(all.mean, want.mean!, 1e-9), `mean ${all.mean} vs ${want.mean}`).toBe(true);
        if (want.stddev === 0) expect(stddev(all)).toBe(0);
        else expect(close(stddev(all)!, want.stddev!, 1e-9), `stddev ${stddev(all)} vs ${want.stddev}`).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('merging an empty state is the identity, both ways', () => {
    const a = momentsOf([1, 2, 3]);
    const before = { ...a };
    mergeMoments(a, emptyMoments());
    expect(a).toEqual(before);
    const e = emptyMoments();
    mergeMoments(e, before);
    expect(e).toEqual(before);
  });

  it('a fixed merge order is bit-for-bit reproducible', () => {
    const parts = [[1.1, 2.2], [3.3], [4.4, 5.5, 6.6]];
    const run = () => {
      const m = emptyMoments();
      for (const p of parts) mergeMoments(m, momentsOf(p));
      return m;
    };
    expect(run()).toEqual(run());
  });
});

// ------------------------------------------------------------------ quantiles

function expectRanks(sketch: { quantile(p: number): number | null }, values: number[], ps: readonly number[] = QUANTILES) {
  const sorted = Float64Array.from(values).sort();
  for (const p of ps) {
    const q = sketch.quantile(p);
    expect(q).not.toBeNull();
    expect(rankError(sorted, q!, p)).toBeNull();
  }
}

const PS = [0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

/** Integer-ish vitals (few distinct values): the exact-histogram path. */
function discreteData(n: number, seed: number): number[] {
  const r = prng(seed);
  return Array.from({ length: n }, () => Math.round(60 + 40 * (r() + r() + r() - 1.5)));
}

/** Continuous, skewed values with far more than MAX_DISTINCT distinct values: the t-digest path. */
function continuousData(n: number, seed: number): number[] {
  const r = prng(seed);
  return Array.from({ length: n }, () => {
    // Log-normal-ish with a heavy right tail and a point mass.
    const u = r();
    if (u < 0.05) return 5.5;
    const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    return Math.round(Math.exp(4 + 0.6 * g) * 1e6) / 1e6;
  });
}

describe('QuantileSketch: exact histogram path', () => {
  it.each<[number[], number, number]>([
    [[1, 2, 3, 4], 0.5, 2],
    [[1, 2, 3, 4], 0.25, 1],
    [[1, 2, 3, 4], 0.26, 2],
    [[1, 2, 3, 4], 1, 4],
    [[1, 2, 3, 4], 0, 1],
    [[5, 5, 5, 9], 0.75, 5],
    [[5, 5, 5, 9], 0.76, 9],
    [[7], 0.05, 7],
  ])('%j p=%d → %d (inverted CDF)', (xs, p, want) => {
    const s = new QuantileSketch();
    for (const x of xs) s.add(x);
    expect(s.exact).toBe(true);
    expect(s.quantile(p)).toBe(want);
  });

  it('an empty sketch has no quantiles', () => {
    expect(new QuantileSketch().quantile(0.5)).toBeNull();
  });

  it('meets the rank tolerance, single and merged from 50 parts', () => {
    const values = discreteData(20_000, 1);
    const single = new QuantileSketch();
    for (const v of values) single.add(v);
    expect(single.exact).toBe(true);
    expectRanks(single, values, PS);

    const merged = new QuantileSketch();
    for (let i = 0; i < 50; i++) {
      const part = new QuantileSketch();
      for (let j = i; j < values.length; j += 50) part.add(values[j]);
      merged.merge(part);
    }
    expect(merged.exact).toBe(true);
    expect(merged.toJSON()).toEqual(single.toJSON());
    expectRanks(merged, values, PS);
  });

  it('property: exact quantiles for any small data set (rank error 0)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 200 }), fc.constantFrom(...PS), (xs, p) => {
        const s = new QuantileSketch();
        for (const x of xs) s.add(x);
        expect(rankError(Float64Array.from(xs).sort(), s.quantile(p)!, p, 0)).toBeNull();
      }),
      { numRuns: 300 },
    );
  });
});

describe('QuantileSketch: t-digest path (> MAX_DISTINCT distinct values)', () => {
  it(`switches to a t-digest past ${MAX_DISTINCT} distinct values`, () => {
    const s = new QuantileSketch();
    for (let i = 0; i <= MAX_DISTINCT; i++) s.add(i);
    expect(s.exact).toBe(false);
    expect(s.toJSON().kind).toBe('tdigest');
  });

  it.each([
    ['uniform', (n: number, seed: number) => { const r = prng(seed); return Array.from({ length: n }, () => r() * 1000); }],
    ['skewed with a point mass', continuousData],
    ['sorted ascending', (n: number) => Array.from({ length: n }, (_, i) => i / 7)],
    ['sorted descending', (n: number) => Array.from({ length: n }, (_, i) => (n - i) / 7)],
    ['two clusters', (n: number, seed: number) => { const r = prng(seed); return Array.from({ length: n }, () => (r() < 0.3 ? 10 + r() : 1000 + r() * 5)); }],
  ])('%s: single sketch meets the rank tolerance', (_name, gen) => {
    const values = gen(50_000, 7);
    const s = new QuantileSketch();
    for (const v of values) s.add(v);
    expect(s.exact).toBe(false);
    expectRanks(s, values, PS);
  });

  it.each([
    ['50 parts, each small (exact) — their union is not', 50, 120],
    ['50 parts, each already a t-digest', 50, 6000],
    ['7 uneven parts', 7, 9000],
  ])('%s: merged sketch meets the rank tolerance', (_name, parts, perPart) => {
    const values = continuousData(parts * perPart, 11);
    const merged = new QuantileSketch();
    const sizes: number[] = [];
    for (let i = 0; i < parts; i++) {
      const part = new QuantileSketch();
      // Uneven, contiguous parts (a month split across chunks).
      const from = i * perPart;
      const to = _name.startsWith('7') ? from + Math.floor(perPart * (0.2 + (1.6 * i) / (parts - 1))) : from + perPart;
      const slice = values.slice(from, Math.min(to, values.length));
      sizes.push(slice.length);
      for (const v of slice) part.add(v);
      merged.merge(part);
    }
    const used = values.slice(0, sizes.reduce((a, b) => a + b, 0));
    expect(merged.exact).toBe(false);
    expect(new Set(used).size).toBeGreaterThan(MAX_DISTINCT);
    expectRanks(merged, used, PS);
  });

  it('merging a histogram into a t-digest and a t-digest into a histogram both work', () => {
    const big = continuousData(30_000, 3);
    const small = discreteData(3000, 4);
    const a = new QuantileSketch();
    for (const v of big) a.add(v);
    const b = new QuantileSketch();
    for (const v of small) b.add(v);
    const ab = QuantileSketch.fromJSON(a.toJSON());
    ab.merge(QuantileSketch.fromJSON(b.toJSON()));
    const ba = QuantileSketch.fromJSON(b.toJSON());
    ba.merge(QuantileSketch.fromJSON(a.toJSON()));
    expectRanks(ab, [...big, ...small], PS);
    expectRanks(ba, [...big, ...small], PS);
  });

  it('a t-digest keeps exact extremes (p=0 and p=1 are min and max)', () => {
    const values = continuousData(20_000, 5);
    const s = new QuantileSketch();
    for (const v of values) s.add(v);
    expect(s.quantile(0)).toBe(Math.min(...values));
    expect(s.quantile(1)).toBe(Math.max(...values));
  });

  it('TDigest alone: weighted adds count as repeated values; count is the total weight', () => {
    const t = new TDigest();
    const values: number[] = [];
    const r = prng(9);
    for (let i = 0; i < 8000; i++) {
      const x = Math.round(r() * 1e6) / 1e3;
      const w = 1 + (i % 3);
      t.add(x, w);
      for (let k = 0; k < w; k++) values.push(x);
    }
    expect(t.count).toBe(values.length);
    expectRanks(t, values, PS);
    expect(new TDigest().quantile(0.5)).toBeNull();
  });
});

describe('QuantileSketch: merged sketches whose ranges overlap (SPEC §4 rank error)', () => {
  /** A sketch as `process` builds one (sorted histogram, src/sinks/encode.ts) and as `stats` reads it (JSON). */
  function sketchOf(values: number[]): QuantileSketch {
    const sorted = Float64Array.from(values).sort();
    const v: number[] = [];
    const c: number[] = [];
    for (const x of sorted) {
      if (v.length > 0 && v[v.length - 1] === x) c[c.length - 1]++;
      else {
        v.push(x);
        c.push(1);
      }
    }
    const s = QuantileSketch.fromSorted(Float64Array.from(v), Float64Array.from(c), v.length);
    return QuantileSketch.fromJSON(JSON.parse(JSON.stringify(s.toJSON())));
  }

  const round = (x: number, decimals: number) => Math.round(x * 10 ** decimals) / 10 ** decimals;

  type Part = { kind: 'wide' | 'cluster'; n: number; seed: number; where: number; spread: number; decimals: number };

  /** Wide: uniform over [10, 10 + spread·2000]; cluster: a narrow normal at `where` (inside the wide ones). */
  function valuesOf(p: Part): number[] {
    const r = prng(p.seed);
    if (p.kind === 'wide') return Array.from({ length: p.n }, () => round(10 + r() * 2000 * p.spread, p.decimals));
    const centre = 10 + 2000 * p.spread * p.where;
    const sd = 0.5 + 20 * (p.where * 7 % 1);
    return Array.from({ length: p.n }, () => round(centre + sd * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()), p.decimals));
  }

  const part = fc.record({
    kind: fc.constantFrom<Part['kind']>('wide', 'cluster'),
    n: fc.integer({ min: 500, max: 7000 }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
    where: fc.double({ min: 0.05, max: 0.95, noNaN: true }),
    spread: fc.constantFrom(0.05, 0.5, 1),
    decimals: fc.constantFrom(0, 1, 2, 3),
  });

  /** Merges left to right (partition batches, then hospitals for ALL) or as a balanced tree. */
  function mergeAll(sketches: QuantileSketch[], tree: boolean): QuantileSketch {
    if (!tree) {
      const acc = sketches[0];
      for (const s of sketches.slice(1)) acc.merge(s);
      return acc;
    }
    let level = sketches;
    while (level.length > 1) {
      const next: QuantileSketch[] = [];
      for (let i = 0; i < level.length; i += 2) {
        if (i + 1 < level.length) level[i].merge(level[i + 1]);
        next.push(level[i]);
      }
      level = next;
    }
    return level[0];
  }

  const CHECKED = [0.01, ...QUANTILES, 0.999];

  it('property: dense clusters inside wide spreads, histograms merged with digests, many-way, any order', () => {
    fc.assert(
      fc.property(
        part.map((p) => ({ ...p, kind: 'wide' as const, n: Math.max(p.n, 4500), decimals: 2 })),
        fc.array(part, { minLength: 1, maxLength: 7 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 << 30 }),
        (wide, rest, tree, shuffle) => {
          const parts = [wide, ...rest];
          // Any merge order: a seeded shuffle of the parts.
          const r = prng(shuffle);
          const keyed = parts.map((p) => ({ p, k: r() }));
          keyed.sort((a, b) => a.k - b.k);
          const values = keyed.map(({ p }) => valuesOf(p));
          const merged = mergeAll(values.map(sketchOf), tree);
          const sorted = Float64Array.from(values.flat()).sort();
          for (const p of CHECKED) {
            const error = rankError(sorted, merged.quantile(p)!, p);
            if (error) throw new Error(`${error}; ${merged.exact ? 'exact' : 'digest'}; parts ${JSON.stringify(keyed.map(({ p }) => p))} tree ${tree}`);
          }
        },
      ),
      { numRuns: 60, seed: 20261204 },
    );
  });

  it('the reviewer case: HA spread evenly over 10–2000 (a digest), HB around 900 ± 5 (a histogram); ALL p25', () => {
    // /tmp/rev-b-scratch/mkq.mjs 21: the `ALL` row's p25 had 3,029 of 10,000 values below it (0.3029 > 0.255).
    let a = 21;
    const rnd = () => {
      a |= 0;
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
    const ha = Array.from({ length: 5000 }, () => round(10 + rnd() * 1990, 2));
    const hb = Array.from({ length: 5000 }, () => round(900 + 5 * gauss(), 1));
    const all = sketchOf(ha);
    const b = sketchOf(hb);
    expect(all.exact).toBe(false);
    expect(b.exact).toBe(true);
    all.merge(b);
    const sorted = Float64Array.from([...ha, ...hb]).sort();
    for (const p of CHECKED) expect(rankError(sorted, all.quantile(p)!, p)).toBeNull();
    expect(all.quantile(0.25)).toBe(892.3); // the exact p25: HB's points stay exact
  });

  it('a K-way merge stays compact (centroid count) and its uncertainty bound holds', () => {
    const parts = Array.from({ length: 10 }, (_, i) => valuesOf({ kind: 'wide', n: 10_000, seed: 100 + i, where: 0.5, spread: 1, decimals: 3 }));
    const merged = mergeAll(parts.map(sketchOf), false);
    const state = merged.toJSON();
    expect(state.kind).toBe('tdigest');
    if (state.kind === 'tdigest') expect(state.digest.mean.length).toBeLessThan(2000);
    expectRanks(merged, parts.flat(), PS);
  });
});

describe('TDigest.quantile: a range over two nearly equal values inside a wide range', () => {
  // 37.8 and 37.800000000000004 (one ulp apart, as unit conversion leaves them) in one centroid: its
  // weight/(max − min) is ~4e16. The sweep once kept one running slope sum, and the rounding left after
  // subtracting that term (8 here) stayed in the slope of the wide range [0, 1000] (weight/width 4.1): its
  // share grew twice as fast, so p = 0.008 was put near 981, where only 0.235 % of the values lie.
  const near = 37.800000000000004;
  const N = 1_000_000;
  // The values: 2050 at 0 and at 1000 (the wide centroid), 150 at each of the two near values, the rest at 5000.
  // The range centroids around any value weigh ≤ 4400 ≤ UNCERTAIN/δ = 0.45 % of the total, as `absorb` keeps them.
  const parts: [number, number][] = [[0, 2050], [37.8, 150], [near, 150], [1000, 2050], [5000, N - 4400]];
  const digest = () =>
    TDigest.fromJSON({ compression: 1000, mean: [500, (37.8 + near) / 2, 5000], weight: [4100, 300, N - 4400], min: [0, 37.8, 5000], max: [1000, near, 5000] });

  it('every p meets SPEC §4 against the exact counts', () => {
    const sorted = new Float64Array(N);
    let k = 0;
    for (const [x, w] of parts) sorted.fill(x, k, (k += w));
    const t = digest();
    for (let i = 0; i <= 1000; i++) {
      const p = i / 100_000;
      expect(rankError(sorted, t.quantile(p)!, p), `p = ${p}`).toBeNull();
    }
    // Past the 4400 values below 1000 (the estimate reaches them only at 1000): the bulk.
    expect(t.quantile(0.008)).toBe(5000);
  });
});

describe('determinism and serialisation', () => {
  const build = (values: number[], parts: number) => {
    const merged = new QuantileSketch();
    for (let i = 0; i < parts; i++) {
      const p = new QuantileSketch();
      for (let j = i; j < values.length; j += parts) p.add(values[j]);
      merged.merge(p);
    }
    return merged;
  };

  it.each([
    ['exact', discreteData(10_000, 21)],
    ['t-digest', continuousData(40_000, 22)],
  ])('%s: same inputs in the same order give identical JSON', (_name, values) => {
    expect(JSON.stringify(build(values, 13).toJSON())).toBe(JSON.stringify(build(values, 13).toJSON()));
    const m1 = new MeasureSketch();
    const m2 = new MeasureSketch();
    for (const v of values) {
      m1.add(v, 2);
      m2.add(v, 2);
    }
    expect(JSON.stringify(m1.toJSON())).toBe(JSON.stringify(m2.toJSON()));
  });

  it('the exact histogram does not depend on insertion order', () => {
    const values = discreteData(5000, 23);
    const a = new QuantileSketch();
    const b = new QuantileSketch();
    for (const v of values) a.add(v);
    for (const v of [...values].reverse()) b.add(v);
    expect(JSON.stringify(a.toJSON())).toBe(JSON.stringify(b.toJSON()));
  });

  it.each([
    ['empty', [] as number[]],
    ['exact', discreteData(1000, 31)],
    ['t-digest', continuousData(20_000, 32)],
  ])('%s: toJSON/fromJSON round trip (through JSON text) keeps state and quantiles', (_name, values) => {
    const s = new QuantileSketch();
    for (const v of values) s.add(v);
    const json = JSON.stringify(s.toJSON());
    const back = QuantileSketch.fromJSON(JSON.parse(json));
    expect(JSON.stringify(back.toJSON())).toBe(json);
    for (const p of PS) expect(back.quantile(p)).toBe(s.quantile(p));

    const m = new MeasureSketch();
    values.forEach((v, i) => m.add(v, 1 + (i % 3)));
    m.nPatients = 17;
    const mj = JSON.stringify(m.toJSON());
    const mb = MeasureSketch.fromJSON(JSON.parse(mj));
    expect(JSON.stringify(mb.toJSON())).toBe(mj);
  });

  it('a merge after a round trip equals a merge without one', () => {
    const a = continuousData(10_000, 41);
    const b = continuousData(10_000, 42);
    const sa = new QuantileSketch();
    const sb = new QuantileSketch();
    a.forEach((v) => sa.add(v));
    b.forEach((v) => sb.add(v));
    const direct = QuantileSketch.fromJSON(sa.toJSON());
    direct.merge(QuantileSketch.fromJSON(sb.toJSON()));
    const viaText = QuantileSketch.fromJSON(JSON.parse(JSON.stringify(sa.toJSON())));
    viaText.merge(QuantileSketch.fromJSON(JSON.parse(JSON.stringify(sb.toJSON()))));
    expect(JSON.stringify(viaText.toJSON())).toBe(JSON.stringify(direct.toJSON()));
  });
});

// ------------------------------------------------------------------ MeasureSketch

describe('MeasureSketch', () => {
  const FLAG_L = 1;
  const FLAG_N = 2;
  const FLAG_H = 3;
  const point = fc.record({ v: measurement, flag: fc.constantFrom(0, FLAG_L, FLAG_N, FLAG_H) });

  it('property: merge(sketch(A), sketch(B)) = sketch(A ∪ B) for n, min, max, nLow, nHigh; mean/stddev within 1e-9', () => {
    fc.assert(
      fc.property(fc.array(fc.array(point, { minLength: 1, maxLength: 80 }), { minLength: 1, maxLength: 12 }), (parts) => {
        const all = new MeasureSketch();
        const merged = new MeasureSketch();
        for (const part of parts) {
          const s = new MeasureSketch();
          for (const { v, flag } of part) {
            s.add(v, flag);
            all.add(v, flag);
          }
          s.nPatients = part.length; // disjoint patient sets: counts add up
          merged.merge(MeasureSketch.fromJSON(JSON.parse(JSON.stringify(s.toJSON()))));
        }
        const flat = parts.flat();
        expect(merged.moments.n).toBe(flat.length);
        expect(merged.min).toBe(all.min);
        expect(merged.max).toBe(all.max);
        expect(merged.nLow).toBe(flat.filter((x) => x.flag === FLAG_L).length);
        expect(merged.nHigh).toBe(flat.filter((x) => x.flag === FLAG_H).length);
        expect(merged.nPatients).toBe(flat.length);
        if (flat.length > 0) {
          expect(merged.min).toBe(Math.min(...flat.map((x) => x.v)));
          expect(merged.max).toBe(Math.max(...flat.map((x) => x.v)));
          expectMomentsClose(merged.moments, flat.map((x) => x.v));
          // Exact histograms: the merged quantiles equal the union's.
          for (const p of QUANTILES) expect(merged.quantiles.quantile(p)).toBe(all.quantiles.quantile(p));
        }
      }),
      { numRuns: 200 },
    );
  });

  // min/max of an empty sketch are ±Infinity, which JSON would turn into null (and `null < x` is true).
  it('an empty sketch survives a JSON round trip and merges in as the identity', () => {
    const s = new MeasureSketch();
    [5, 7].forEach((v) => s.add(v, FLAG_N));
    const empty = MeasureSketch.fromJSON(JSON.parse(JSON.stringify(new MeasureSketch().toJSON())));
    s.merge(empty);
    expect([s.min, s.max]).toEqual([5, 7]);
  });

  it('an empty sketch merged in changes nothing', () => {
    const s = new MeasureSketch();
    [3, 1, 2].forEach((v) => s.add(v, FLAG_N));
    const before = JSON.stringify(s.toJSON());
    s.merge(new MeasureSketch());
    expect(JSON.stringify(s.toJSON())).toBe(before);
  });
});
