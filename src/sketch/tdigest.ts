/**
 * A deterministic merging t-digest (Dunning & Ertl, "Computing extremely
 * accurate quantiles using t-digests", 2019), with uniform centroid sizes and
 * a merge rule that bounds the rank error of merged digests too (`absorb`).
 *
 * Why not the npm `tdigest` package: its compress() shuffles centroids with
 * Math.random, so identical runs differ, and it has no merge API
 * (docs/decisions/0002-statistics-sketches.md). Here every operation is a
 * pure function of its inputs and their order. Each centroid also keeps the
 * min and max of the values it absorbed, so a quantile inside a centroid is
 * interpolated within the values it really covers (a point mass stays exact).
 */
export interface TDigestState {
  compression: number;
  mean: number[];
  weight: number[];
  min: number[];
  max: number[];
}

/** A joined centroid's weight: at most RUN/δ of the total. */
const RUN = 1.5;
/**
 * Weight of range centroids around any value: at most UNCERTAIN/δ of the
 * total (see `absorb`). SPEC §4's 0.005 needs δ ≥ 900; the default is 1000.
 */
const UNCERTAIN = 4.5;
/**
 * `quantile` sums its slope afresh when a range closes and leaves it below
 * RESUM times its peak: the running sum's rounding error is a few ulps of
 * the peak, so up to that point it stays ~1e-8 of the slope or less.
 */
const RESUM = 2 ** -26;

export class TDigest {
  private mean: number[] = [];
  private weight: number[] = [];
  private cmin: number[] = [];
  private cmax: number[] = [];
  private buffer: number[] = [];
  private bufWeight: number[] = [];

  constructor(readonly compression = 1000) {}

  get count(): number {
    let w = 0;
    for (const x of this.weight) w += x;
    for (const x of this.bufWeight) w += x;
    return w;
  }

  /** Adds `x` with weight `w` (a histogram bin can arrive as one weighted point). */
  add(x: number, w = 1): void {
    this.buffer.push(x);
    this.bufWeight.push(w);
    if (this.buffer.length >= this.compression * 5) this.compress();
  }

  merge(other: TDigest): void {
    other.compress();
    this.compress();
    this.absorb(other.mean, other.weight, other.cmin, other.cmax);
  }

  /**
   * Re-compresses centroids (and buffered points) in one pass, in order of
   * their smallest value (then largest, weight, mean, index: deterministic).
   * Neighbours join into one centroid while (1) its weight stays ≤ RUN/δ of
   * the total and (2) its weight plus that of every other range centroid
   * meeting its value range [min, max] — those already emitted and the
   * inputs still to come — stays ≤ UNCERTAIN/δ of the total.
   *
   * Why (2): digests built separately and merged have overlapping centroids
   * (one digest's wide centroid over another's dense values). What
   * `quantile` can get wrong at a value x is the weight of the range
   * centroids (min < max) around x; points are exact. Rule (2) keeps that
   * weight ≤ UNCERTAIN/δ everywhere a joined centroid lies, and where none
   * does only input centroids remain, whose uncertainty adds up across a
   * merge (a fraction of each part's total, so of the sum). By induction it
   * holds through any sequence of adds and merges: 0.0045 at δ = 1000,
   * inside SPEC §4's rank error of 0.005.
   */
  private absorb(mean: number[], weight: number[], mn: number[], mx: number[]): void {
    const n = this.mean.length + mean.length;
    const order: number[] = new Array(n);
    const M = this.mean.concat(mean);
    const W = this.weight.concat(weight);
    const L = this.cmin.concat(mn);
    const H = this.cmax.concat(mx);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => L[a] - L[b] || H[a] - H[b] || W[a] - W[b] || M[a] - M[b] || a - b);
    // rangeAfter[j]: weight of the range inputs at order positions ≥ j.
    const sortedMin = new Float64Array(n);
    const rangeAfter = new Float64Array(n + 1);
    for (let j = 0; j < n; j++) sortedMin[j] = L[order[j]];
    for (let j = n - 1; j >= 0; j--) {
      const i = order[j];
      rangeAfter[j] = rangeAfter[j + 1] + (L[i] < H[i] ? W[i] : 0);
    }
    let total = 0;
    for (const w of W) total += w;
    const runCap = (RUN / this.compression) * total;
    const uncertainCap = (UNCERTAIN / this.compression) * total;
    const outM: number[] = [];
    const outW: number[] = [];
    const outL: number[] = [];
    const outH: number[] = [];
    // Emitted range centroids, as a min-heap on max: those with max < the
    // current run's min no longer meet anything (runs start in min order).
    const heap = new MinHeap();
    let emitted = 0;
    let cm = NaN, cw = 0, cl = NaN, ch = NaN;
    const emit = () => {
      outM.push(cm); outW.push(cw); outL.push(cl); outH.push(ch);
      if (cl < ch) { heap.push(ch, cw); emitted += cw; }
    };
    for (let j = 0; j < n; j++) {
      const i = order[j];
      if (cw > 0) {
        const hi = H[i] > ch ? H[i] : ch;
        const w = cw + W[i];
        // Range inputs after i whose min ≤ hi meet the joined range.
        const ahead = rangeAfter[j + 1] - rangeAfter[upperBound(sortedMin, hi, j + 1)];
        if (w <= runCap && w + emitted + ahead <= uncertainCap) {
          cw = w;
          cm += ((M[i] - cm) * W[i]) / cw;
          ch = hi;
          continue;
        }
        emit();
      }
      cm = M[i]; cw = W[i]; cl = L[i]; ch = H[i];
      while (heap.size > 0 && heap.topKey() < cl) emitted -= heap.pop();
    }
    if (cw > 0) emit();
    this.mean = outM;
    this.weight = outW;
    this.cmin = outL;
    this.cmax = outH;
  }

  compress(): void {
    if (this.buffer.length === 0) return;
    const b = this.buffer;
    const w = this.bufWeight;
    this.buffer = [];
    this.bufWeight = [];
    this.absorb(b, w, b, b);
  }

  /**
   * The p-quantile estimate, or null when empty: the smallest x where the
   * estimated count of values ≤ x reaches p·total. The estimate adds up every
   * centroid's share below x — a point mass exactly, a range centroid as if
   * spread evenly over [min, max] — so centroids that overlap in value (as
   * merged digests' do) each count only their own weight. The true count of
   * values < x (or ≤ x) differs from it by at most the weight of the range
   * centroids around x, ≤ UNCERTAIN/δ of the total (see `absorb`): 0.0045 at
   * δ = 1000, inside SPEC's rank error of 0.005.
   */
  quantile(p: number): number | null {
    this.compress();
    const n = this.mean.length;
    if (n === 0) return null;
    let total = 0;
    for (const w of this.weight) total += w;
    const target = p * total;
    // Sweep the distinct ends of all centroids in value order. Between two
    // ends the estimate is linear: `slope` is the sum of weight/(max − min)
    // over the ranges open there; `done` is the weight of points and ranges
    // wholly at or below the last end, `open` the share of the open ranges.
    //
    // `slope` is a running sum, and a range over two nearly equal values
    // (37.8 and 37.800000000000004: max − min ~ 1e-14) adds ~1e17 to it;
    // once that range closes, the rounding left behind (many units) would
    // stay in the slope of a wide range still open, far from its own
    // weight/(max − min). So when the slope falls far below the largest it
    // reached since nothing was open (`peak`: below it by more than RESUM),
    // it is summed afresh over the ranges open. Otherwise nothing changes.
    const ends: number[] = [];
    for (let i = 0; i < n; i++) {
      ends.push(this.cmin[i]);
      if (this.cmax[i] !== this.cmin[i]) ends.push(this.cmax[i]);
    }
    ends.sort((a, b) => a - b);
    const byMin = indexSortedBy(this.cmin, n);
    const byMax = indexSortedBy(this.cmax, n);
    let a = 0; // next in byMin
    let b = 0; // next in byMax
    let done = 0, open = 0, slope = 0, active = 0, peak = 0;
    const isOpen = new Uint8Array(n);
    let prev = ends[0];
    for (let e = 0; e < ends.length; e++) {
      const x = ends[e];
      if (e > 0 && x === prev) continue;
      if (active > 0 && slope > 0) {
        const atX = open + slope * (x - prev);
        if (done + atX >= target) {
          const y = prev + (target - done - open) / slope;
          if (y < x) return y > prev ? y : prev;
          // Rounding: the crossing is at x itself; fall through.
        }
        open = atX;
      }
      // Ranges ending at x and points at x are now wholly ≤ x.
      while (b < n && this.cmax[byMax[b]] === x) {
        const i = byMax[b++];
        if (this.cmin[i] < this.cmax[i]) {
          slope -= this.weight[i] / (this.cmax[i] - this.cmin[i]);
          open -= this.weight[i];
          isOpen[i] = 0;
          active--;
        }
        done += this.weight[i];
      }
      while (a < n && this.cmin[byMin[a]] === x) {
        const i = byMin[a++];
        if (this.cmin[i] < this.cmax[i]) {
          slope += this.weight[i] / (this.cmax[i] - this.cmin[i]);
          if (slope > peak) peak = slope;
          isOpen[i] = 1;
          active++;
        }
      }
      // Nothing open: the sums restart exactly (no rounding carried over gaps).
      // Far below its peak (or NaN: a range of width ~5e-324 made it ∞ − ∞):
      // the slope is summed afresh over the ranges open now.
      if (active === 0) { open = 0; slope = 0; peak = 0; }
      else if (!(slope >= peak * RESUM)) {
        slope = 0;
        for (let k = 0; k < a; k++) {
          const i = byMin[k];
          if (isOpen[i] === 1) slope += this.weight[i] / (this.cmax[i] - this.cmin[i]);
        }
        peak = slope;
      }
      if (done + open >= target) return x;
      prev = x;
    }
    return ends[ends.length - 1];
  }

  toJSON(): TDigestState {
    this.compress();
    return { compression: this.compression, mean: this.mean.slice(), weight: this.weight.slice(), min: this.cmin.slice(), max: this.cmax.slice() };
  }

  static fromJSON(s: TDigestState): TDigest {
    const t = new TDigest(s.compression);
    t.mean = s.mean.slice();
    t.weight = s.weight.slice();
    t.cmin = s.min.slice();
    t.cmax = s.max.slice();
    return t;
  }
}

/** The first position ≥ from where the ascending `xs` exceed v (xs.length if none). */
function upperBound(xs: Float64Array, v: number, from: number): number {
  let lo = from, hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A binary min-heap of (key, weight) pairs. */
class MinHeap {
  private keys: number[] = [];
  private weights: number[] = [];
  get size(): number {
    return this.keys.length;
  }
  topKey(): number {
    return this.keys[0];
  }
  push(key: number, weight: number): void {
    const k = this.keys, w = this.weights;
    let i = k.length;
    k.push(key); w.push(weight);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (k[p] <= k[i]) break;
      [k[p], k[i]] = [k[i], k[p]]; [w[p], w[i]] = [w[i], w[p]];
      i = p;
    }
  }
  /** Removes the smallest key; returns its weight. */
  pop(): number {
    const k = this.keys, w = this.weights;
    const top = w[0];
    const lk = k.pop()!, lw = w.pop()!;
    if (k.length > 0) {
      k[0] = lk; w[0] = lw;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < k.length && k[l] < k[m]) m = l;
        if (r < k.length && k[r] < k[m]) m = r;
        if (m === i) break;
        [k[m], k[i]] = [k[i], k[m]]; [w[m], w[i]] = [w[i], w[m]];
        i = m;
      }
    }
    return top;
  }
}

/** Indices 0..n−1 ordered by `key` (ties by index). */
function indexSortedBy(key: number[], n: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  return idx.sort((i, j) => key[i] - key[j] || i - j);
}
