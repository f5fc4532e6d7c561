/**
 * Count, mean and sum of squared deviations, with Welford's update for one
 * value, a two-pass sum for a histogram (a batch's values) and Chan et al.'s
 * pairwise merge (1979) for two states. Merging in a fixed order gives
 * bit-identical results.
 */
export interface Moments {
  n: number;
  mean: number;
  m2: number;
  /**
   * What rounding `mean` lost (the mean is `mean + meanError`), so that a
   * merge of two states whose means agree to many digits subtracts them
   * exactly. Absent (0) in states from `addValue` and in older sketch files.
   */
  meanError?: number;
}

export const emptyMoments = (): Moments => ({ n: 0, mean: 0, m2: 0 });

export function addValue(m: Moments, x: number): void {
  m.n++;
  const d = x - m.mean;
  m.mean += d / m.n;
  m.m2 += d * (x - m.mean);
}

/**
 * The moments of a histogram (values[0, k) with their counts), by the
 * corrected two-pass algorithm around its first value (Chan, Golub &
 * LeVeque, "Algorithms for computing the sample variance", 1983): within a
 * few ulps of the exact ones however small the spread is against the mean.
 * Welford's update, value by value, is off by more than SPEC §4's 1e-9 of
 * the stddev once that is ~1e-8 of the mean (`299.990001`, `299.990002`…),
 * even for two values.
 */
export function histogramMoments(values: ArrayLike<number>, counts: ArrayLike<number>, k: number): Moments {
  if (k === 0) return emptyMoments();
  const shift = values[0];
  let n = 0;
  let s = 0;
  for (let i = 0; i < k; i++) {
    n += counts[i];
    s += counts[i] * (values[i] - shift);
  }
  const rough = shift + s / n;
  // m2 around the rough mean, less the share its rounding error adds (e ≈ 0).
  let m2 = 0;
  let e = 0;
  for (let i = 0; i < k; i++) {
    const d = values[i] - rough;
    m2 += counts[i] * d * d;
    e += counts[i] * d;
  }
  const [mean, meanError] = twoSum(rough, e / n);
  return { n, mean, m2: Math.max(0, m2 - (e * e) / n), meanError };
}

/** a + b as the rounded sum and its rounding error, exactly (Knuth's TwoSum). */
function twoSum(a: number, b: number): [number, number] {
  const s = a + b;
  const bb = s - a;
  return [s, a - (s - bb) + (b - bb)];
}

/** Merges b into a (Chan's parallel algorithm). */
export function mergeMoments(a: Moments, b: Moments): void {
  if (b.n === 0) return;
  if (a.n === 0) {
    a.n = b.n;
    a.mean = b.mean;
    a.m2 = b.m2;
    if (b.meanError) a.meanError = b.meanError;
    return;
  }
  const n = a.n + b.n;
  // The exact means' difference: close means subtract exactly (Sterbenz), and what their rounding lost is put
  // back, without which d is off by an ulp of the mean (~1e-5 of d when the parts agree to 9 digits).
  const ea = a.meanError ?? 0;
  const d = b.mean - a.mean + ((b.meanError ?? 0) - ea);
  const [hi, lo] = twoSum(a.mean, (d * b.n) / n);
  [a.mean, a.meanError] = twoSum(hi, lo + ea);
  a.m2 += b.m2 + (d * d * a.n * b.n) / n;
  a.n = n;
}

/** Sample standard deviation (n − 1), null below two values. */
export function stddev(m: Moments): number | null {
  return m.n < 2 ? null : Math.sqrt(m.m2 / (m.n - 1));
}
