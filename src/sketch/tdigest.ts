/**
 * A deterministic merging t-digest (Dunning & Ertl, "Computing extremely
 * accurate quantiles using t-digests", 2019), k1 scale function.
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

  private absorb(mean: number[], weight: number[], mn: number[], mx: number[]): void {
    const n = this.mean.length + mean.length;
    const order: number[] = new Array(n);
    const M = this.mean.concat(mean);
    const W = this.weight.concat(weight);
    const L = this.cmin.concat(mn);
    const H = this.cmax.concat(mx);
    for (let i = 0; i < n; i++) order[i] = i;
    // Total order (mean, then weight, then min, then index): deterministic.
    order.sort((a, b) => M[a] - M[b] || W[a] - W[b] || L[a] - L[b] || a - b);
    let total = 0;
    for (const w of W) total += w;
    const outM: number[] = [];
    const outW: number[] = [];
    const outL: number[] = [];
    const outH: number[] = [];
    const delta = this.compression;
    const k = (q: number) => (delta / (2 * Math.PI)) * Math.asin(2 * q - 1);
    const kInv = (kk: number) => (Math.sin((2 * Math.PI * kk) / delta) + 1) / 2;
    let soFar = 0;
    let qLimit = kInv(k(0) + 1) * total;
    let cm = NaN, cw = 0, cl = NaN, ch = NaN;
    for (const i of order) {
      if (cw === 0) {
        cm = M[i]; cw = W[i]; cl = L[i]; ch = H[i];
        continue;
      }
      if (soFar + cw + W[i] <= qLimit) {
        cw += W[i];
        cm += ((M[i] - cm) * W[i]) / cw;
        if (L[i] < cl) cl = L[i];
        if (H[i] > ch) ch = H[i];
      } else {
        outM.push(cm); outW.push(cw); outL.push(cl); outH.push(ch);
        soFar += cw;
        qLimit = kInv(k(Math.min(1, soFar / total)) + 1) * total;
        cm = M[i]; cw = W[i]; cl = L[i]; ch = H[i];
      }
    }
    if (cw > 0) {
      outM.push(cm); outW.push(cw); outL.push(cl); outH.push(ch);
    }
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

  /** The p-quantile estimate, or null when empty. */
  quantile(p: number): number | null {
    this.compress();
    const n = this.mean.length;
    if (n === 0) return null;
    let total = 0;
    for (const w of this.weight) total += w;
    const target = p * total;
    let cum = 0;
    for (let i = 0; i < n; i++) {
      const w = this.weight[i];
      if (target <= cum + w || i === n - 1) {
        if (this.cmin[i] === this.cmax[i]) return this.cmin[i];
        const f = Math.min(1, Math.max(0, (target - cum) / w));
        return this.cmin[i] + f * (this.cmax[i] - this.cmin[i]);
      }
      cum += w;
    }
    return this.cmax[n - 1];
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
