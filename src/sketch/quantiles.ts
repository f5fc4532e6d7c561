/**
 * The quantile sketch: an exact value → count histogram while a measure has
 * few distinct values (vital signs and most labs: integers or one decimal),
 * which gives exact quantiles; past `maxDistinct` it turns into a t-digest.
 * Mergeable, and deterministic for a fixed merge order.
 */
import { TDigest, type TDigestState } from './tdigest.js';

export const MAX_DISTINCT = 4096;
export const QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95, 0.99] as const;

export type QuantileState = { kind: 'exact'; values: number[]; counts: number[] } | { kind: 'tdigest'; digest: TDigestState };

export class QuantileSketch {
  private hist: Map<number, number> | null = new Map();
  private digest: TDigest | null = null;

  add(x: number, w = 1): void {
    if (this.hist) {
      this.hist.set(x, (this.hist.get(x) ?? 0) + w);
      if (this.hist.size > MAX_DISTINCT) this.toDigest();
    } else this.digest!.add(x, w);
  }

  private toDigest(): void {
    const d = new TDigest();
    // Sorted, so the conversion does not depend on insertion order.
    const values = [...this.hist!.keys()].sort((a, b) => a - b);
    for (const v of values) d.add(v, this.hist!.get(v)!);
    this.hist = null;
    this.digest = d;
  }

  merge(other: QuantileSketch): void {
    if (other.hist) {
      const values = [...other.hist.keys()].sort((a, b) => a - b);
      for (const v of values) this.add(v, other.hist.get(v)!);
      return;
    }
    if (this.hist) this.toDigest();
    this.digest!.merge(other.digest!);
  }

  /** Inverted-CDF quantile: the smallest value whose cumulative count reaches p·n. */
  quantile(p: number): number | null {
    if (this.digest) return this.digest.quantile(p);
    const values = [...this.hist!.keys()].sort((a, b) => a - b);
    if (values.length === 0) return null;
    let n = 0;
    for (const v of values) n += this.hist!.get(v)!;
    const target = p * n;
    let cum = 0;
    for (const v of values) {
      cum += this.hist!.get(v)!;
      if (cum >= target) return v;
    }
    return values[values.length - 1];
  }

  get exact(): boolean {
    return this.hist !== null;
  }

  toJSON(): QuantileState {
    if (this.digest) return { kind: 'tdigest', digest: this.digest.toJSON() };
    const values = [...this.hist!.keys()].sort((a, b) => a - b);
    return { kind: 'exact', values, counts: values.map((v) => this.hist!.get(v)!) };
  }

  static fromJSON(s: QuantileState): QuantileSketch {
    const q = new QuantileSketch();
    if (s.kind === 'exact') {
      for (let i = 0; i < s.values.length; i++) q.hist!.set(s.values[i], s.counts[i]);
    } else {
      q.hist = null;
      q.digest = TDigest.fromJSON(s.digest);
    }
    return q;
  }
}
