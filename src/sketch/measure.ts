/**
 * Everything the monthly statistics need for one (hospital, month, measure):
 * exact count, moments, extremes, L/H counts and distinct patients, plus the
 * quantile sketch. `toJSON`/`fromJSON`/`merge` make it travel and combine.
 */
import { FLAG_H, FLAG_L } from '../rules/fields.js';
import { addValue, emptyMoments, mergeMoments, type Moments } from './moments.js';
import { QuantileSketch, type QuantileState } from './quantiles.js';

export interface MeasureSketchState {
  moments: Moments;
  /** null when the sketch is empty (JSON has no Infinity). */
  min: number | null;
  max: number | null;
  nLow: number;
  nHigh: number;
  /** Distinct patients (exact); summed across hospitals, since patient IDs are scoped by hospital. */
  nPatients: number;
  quantiles: QuantileState;
}

export class MeasureSketch {
  moments: Moments = emptyMoments();
  min = Infinity;
  max = -Infinity;
  nLow = 0;
  nHigh = 0;
  nPatients = 0;
  quantiles = new QuantileSketch();

  add(x: number, flag: number): void {
    addValue(this.moments, x);
    this.addCounts(x, flag);
    this.quantiles.add(x);
  }

  /**
   * Everything `add` does but the moments and the quantile sketch: for a
   * caller that builds those itself from the same values' histogram
   * (src/sinks/encode.ts, which sorts a batch's values once).
   */
  addCounts(x: number, flag: number): void {
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
    if (flag === FLAG_L) this.nLow++;
    else if (flag === FLAG_H) this.nHigh++;
  }

  /** Merges another sketch in; `nPatients` adds up, so merge only disjoint patient sets. */
  merge(o: MeasureSketch): void {
    mergeMoments(this.moments, o.moments);
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
    this.nLow += o.nLow;
    this.nHigh += o.nHigh;
    this.nPatients += o.nPatients;
    this.quantiles.merge(o.quantiles);
  }

  toJSON(): MeasureSketchState {
    return this.state(this.quantiles.toJSON());
  }

  /** The state with typed arrays, to send to another thread (fromJSON reads both). */
  toTransfer(): MeasureSketchState {
    return this.state(this.quantiles.toTransfer());
  }

  private state(quantiles: QuantileState): MeasureSketchState {
    const empty = this.moments.n === 0;
    return { moments: { ...this.moments }, min: empty ? null : this.min, max: empty ? null : this.max, nLow: this.nLow, nHigh: this.nHigh, nPatients: this.nPatients, quantiles };
  }

  static fromJSON(s: MeasureSketchState): MeasureSketch {
    const m = new MeasureSketch();
    m.moments = { ...s.moments };
    m.min = s.min ?? Infinity;
    m.max = s.max ?? -Infinity;
    m.nLow = s.nLow;
    m.nHigh = s.nHigh;
    m.nPatients = s.nPatients;
    m.quantiles = QuantileSketch.fromJSON(s.quantiles);
    return m;
  }
}
