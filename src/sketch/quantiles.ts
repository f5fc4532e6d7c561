/**
 * The quantile sketch: an exact histogram (sorted distinct values and their
 * counts) while a measure has few distinct values (vital signs and most
 * labs: integers or one decimal), which gives exact quantiles; past
 * `maxDistinct` it turns into a t-digest. Mergeable, and deterministic for
 * a fixed merge order: two histograms merge by walking both sorted lists,
 * and a histogram turns into a digest in value order.
 */
import { TDigest, type TDigestState } from './tdigest.js';

export const MAX_DISTINCT = 4096;
export const QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95, 0.99] as const;

export type QuantileState =
  | { kind: 'exact'; values: number[] | Float64Array; counts: number[] | Float64Array }
  | { kind: 'tdigest'; digest: TDigestState };

export class QuantileSketch {
  /** Exact: values[0, size) ascending and distinct, with their counts. Null once a digest. */
  private values: Float64Array<ArrayBufferLike> | null = new Float64Array(8);
  private counts: Float64Array<ArrayBufferLike> = new Float64Array(8);
  private size = 0;
  /** Values added one at a time since the last merge into the sorted lists: [value, weight] pairs. */
  private pending: number[] = [];
  private digest: TDigest | null = null;

  add(x: number, w = 1): void {
    if (this.digest) this.digest.add(x, w);
    else {
      this.pending.push(x, w);
      if (this.pending.length >= 2048) this.flush();
    }
  }

  /** A sketch of a sorted histogram: values[0, n) ascending and distinct, with their counts (kept, not copied). */
  static fromSorted(values: Float64Array, counts: Float64Array, n: number): QuantileSketch {
    const q = new QuantileSketch();
    q.values = values;
    q.counts = counts;
    q.size = n;
    if (n > MAX_DISTINCT) q.toDigest();
    return q;
  }

  /** Merges pending single values into the sorted lists. */
  private flush(): void {
    const p = this.pending;
    if (p.length === 0 || !this.values) return;
    const n = p.length / 2;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p[2 * a] - p[2 * b]);
    const v = new Float64Array(n);
    const c = new Float64Array(n);
    let k = 0;
    for (const i of order) {
      if (k > 0 && v[k - 1] === p[2 * i]) c[k - 1] += p[2 * i + 1];
      else {
        v[k] = p[2 * i];
        c[k++] = p[2 * i + 1];
      }
    }
    this.pending = [];
    this.mergeSorted(v, c, k);
  }

  /** Merges a sorted histogram into this (exact) one; turns into a digest past MAX_DISTINCT. */
  private mergeSorted(bv: Float64Array, bc: Float64Array, bn: number): void {
    const av = this.values!;
    const ac = this.counts;
    const an = this.size;
    const v = new Float64Array(an + bn);
    const c = new Float64Array(an + bn);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < an || j < bn) {
      if (j >= bn || (i < an && av[i] < bv[j])) {
        v[k] = av[i];
        c[k++] = ac[i++];
      } else if (i >= an || bv[j] < av[i]) {
        v[k] = bv[j];
        c[k++] = bc[j++];
      } else {
        v[k] = av[i];
        c[k++] = ac[i++] + bc[j++];
      }
    }
    this.values = v;
    this.counts = c;
    this.size = k;
    if (k > MAX_DISTINCT) this.toDigest();
  }

  private toDigest(): void {
    const d = new TDigest();
    // In value order, so the digest does not depend on how the values arrived.
    for (let i = 0; i < this.size; i++) d.add(this.values![i], this.counts[i]);
    this.values = null;
    this.size = 0;
    this.digest = d;
  }

  merge(other: QuantileSketch): void {
    other.flush();
    if (other.digest) {
      this.flush();
      if (!this.digest) this.toDigest();
      this.digest!.merge(other.digest);
      return;
    }
    if (this.digest) {
      for (let i = 0; i < other.size; i++) this.digest.add(other.values![i], other.counts[i]);
      return;
    }
    this.flush();
    this.mergeSorted(other.values!, other.counts, other.size);
  }

  /** Inverted-CDF quantile: the smallest value whose cumulative count reaches p·n. */
  quantile(p: number): number | null {
    this.flush();
    if (this.digest) return this.digest.quantile(p);
    if (this.size === 0) return null;
    let n = 0;
    for (let i = 0; i < this.size; i++) n += this.counts[i];
    const target = p * n;
    let cum = 0;
    for (let i = 0; i < this.size; i++) {
      cum += this.counts[i];
      if (cum >= target) return this.values![i];
    }
    return this.values![this.size - 1];
  }

  get exact(): boolean {
    this.flush();
    return this.digest === null;
  }

  /** Plain-array state (for JSON files). */
  toJSON(): QuantileState {
    this.flush();
    if (this.digest) return { kind: 'tdigest', digest: this.digest.toJSON() };
    return { kind: 'exact', values: Array.from(this.values!.subarray(0, this.size)), counts: Array.from(this.counts.subarray(0, this.size)) };
  }

  /** Typed-array state (to cross threads cheaply). */
  toTransfer(): QuantileState {
    this.flush();
    if (this.digest) return { kind: 'tdigest', digest: this.digest.toJSON() };
    return { kind: 'exact', values: this.values!.slice(0, this.size), counts: this.counts.slice(0, this.size) };
  }

  static fromJSON(s: QuantileState): QuantileSketch {
    if (s.kind === 'exact') {
      const v = s.values instanceof Float64Array ? s.values : Float64Array.from(s.values);
      const c = s.counts instanceof Float64Array ? s.counts : Float64Array.from(s.counts);
      return QuantileSketch.fromSorted(v, c, v.length);
    }
    const q = new QuantileSketch();
    q.values = null;
    q.digest = TDigest.fromJSON(s.digest);
    return q;
  }
}
