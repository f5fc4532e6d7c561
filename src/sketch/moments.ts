/**
 * Count, mean and sum of squared deviations, with Welford's update for one
 * value and Chan et al.'s pairwise merge (1979) for two states. Merging in a
 * fixed order gives bit-identical results.
 */
export interface Moments {
  n: number;
  mean: number;
  m2: number;
}

export const emptyMoments = (): Moments => ({ n: 0, mean: 0, m2: 0 });

export function addValue(m: Moments, x: number): void {
  m.n++;
  const d = x - m.mean;
  m.mean += d / m.n;
  m.m2 += d * (x - m.mean);
}

/** Merges b into a (Chan's parallel algorithm). */
export function mergeMoments(a: Moments, b: Moments): void {
  if (b.n === 0) return;
  if (a.n === 0) {
    a.n = b.n;
    a.mean = b.mean;
    a.m2 = b.m2;
    return;
  }
  const n = a.n + b.n;
  const d = b.mean - a.mean;
  a.mean += (d * b.n) / n;
  a.m2 += b.m2 + (d * d * a.n * b.n) / n;
  a.n = n;
}

/** Sample standard deviation (n − 1), null below two values. */
export function stddev(m: Moments): number | null {
  return m.n < 2 ? null : Math.sqrt(m.m2 / (m.n - 1));
}
