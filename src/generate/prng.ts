/**
 * A small, fast, seeded PRNG for the synthetic data generator.
 *
 * sfc32 (Chris Doty-Humphrey's Small Fast Chaotic generator, PractRand-clean,
 * 128-bit state) in plain 32-bit integer arithmetic: no BigInt, no
 * allocation per draw. Not cryptographic: it only has to be fast and
 * reproducible across platforms, which 32-bit integer maths is.
 * https://pracrand.sourceforge.net/RNG_engines.txt
 */

const TWO_POW_32 = 4294967296;

/** Murmur3's 32-bit finaliser: a cheap, well-mixed integer hash. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Hashes a few integers (e.g. seed, stream, key) into one well-mixed 32-bit value. */
export function hash32(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    // Fold numbers beyond 32 bits too, so large seeds still differ.
    const lo = p >>> 0;
    const hi = Math.floor(p / TWO_POW_32) >>> 0;
    h = mix32(h ^ lo) + 0x6d2b79f5;
    h = mix32(h ^ hi) >>> 0;
  }
  return h;
}

/** The seeded generator. Every method is deterministic given the seed and call order. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = 0;
  private hasSpare = false;

  /** `seed` is any finite number (integers up to 2^53 are distinguished); `stream` separates independent sequences. */
  constructor(seed: number, stream = 0) {
    this.a = hash32(seed, stream, 1);
    this.b = hash32(seed, stream, 2);
    this.c = hash32(seed, stream, 3);
    this.d = 1;
    for (let i = 0; i < 15; i++) this.u32(); // warm up, as the reference implementation does
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const a = this.a;
    const b = this.b;
    const c = this.c;
    const d = this.d;
    const t = (((a + b) | 0) + d) | 0;
    this.d = (d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = ((c << 21) | (c >>> 11)) + t | 0;
    return t >>> 0;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.u32() / TWO_POW_32;
  }

  /** A uniform integer in [0, n) for 0 < n <= 2^32. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** A uniform integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A standard normal draw (Box-Muller; the second value of each pair is kept for the next call). */
  gauss(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u = this.float();
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * v;
    this.spare = r * Math.sin(theta);
    this.hasSpare = true;
    return r * Math.cos(theta);
  }

  /** A normal draw with the given mean and standard deviation. */
  normal(mean: number, sd: number): number {
    return mean + sd * this.gauss();
  }
}

/** Picks indexes with fixed weights in O(n) without allocation; n is small (units, hospitals). */
export class WeightedPicker {
  private readonly cumulative: Float64Array;

  constructor(weights: readonly number[]) {
    if (weights.length === 0) throw new RangeError('WeightedPicker needs at least one weight');
    this.cumulative = new Float64Array(weights.length);
    let sum = 0;
    weights.forEach((w, i) => {
      if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`weight ${i} must be a finite non-negative number`);
      sum += w;
      this.cumulative[i] = sum;
    });
    if (!(sum > 0)) throw new RangeError('weights must not all be zero');
    for (let i = 0; i < this.cumulative.length; i++) this.cumulative[i] /= sum;
  }

  /** An index drawn with probability proportional to its weight. */
  pick(rng: Prng): number {
    const u = rng.float();
    const c = this.cumulative;
    const last = c.length - 1;
    for (let i = 0; i < last; i++) if (u < c[i]) return i;
    return last;
  }
}
