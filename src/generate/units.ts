/**
 * Unit choice for clean values. The spellings and their conversions come
 * from the registry: a clean value is drawn in the canonical unit, then
 * written in a chosen unit through the inverse of the registry's own
 * conversion, so the generator and the validator can never disagree on a
 * factor. Every conversion in SPEC §2 is affine (a·x + b), so the inverse is
 * read off the forward function.
 */

import type { Convert, MeasureIndex } from '../registry.js';
import { fixed } from './format.js';
import { Prng, WeightedPicker } from './prng.js';

/** A spelling the generator may use, how often (relative) and with how many decimals. */
export interface UnitOption {
  readonly unit: string;
  readonly weight: number;
  readonly decimals: number;
}

/** The units one hospital uses for one measure, ready for the hot loop. */
export class UnitTable {
  private readonly units: string[] = [];
  private readonly decimals: number[] = [];
  private readonly scale: number[] = [];
  private readonly shift: number[] = [];
  private readonly picker: WeightedPicker;
  /** Index of the unit picked by the last `pick`. */
  chosen = 0;

  constructor(index: MeasureIndex, measure: number, options: readonly UnitOption[], fallbackDecimals: number) {
    const weights: number[] = [];
    for (const o of options) {
      const convert = index.unitFor(measure, o.unit);
      if (!convert || !(o.weight > 0)) continue; // not (or no longer) accepted by the registry
      const [a, b] = affine(convert, o.unit);
      this.units.push(o.unit);
      this.decimals.push(o.decimals);
      this.scale.push(a);
      this.shift.push(b);
      weights.push(o.weight);
    }
    if (this.units.length === 0) {
      this.units.push(index.specs[measure].canonicalUnit);
      this.decimals.push(fallbackDecimals);
      this.scale.push(1);
      this.shift.push(0);
      weights.push(1);
    }
    this.picker = new WeightedPicker(weights);
  }

  /** Picks a unit and returns its spelling; `format` then writes values in it. */
  pick(rng: Prng): string {
    this.chosen = this.units.length === 1 ? 0 : this.picker.pick(rng);
    return this.units[this.chosen];
  }

  /** The canonical value `y` written in the last picked unit. */
  format(y: number): string {
    const i = this.chosen;
    return fixed((y - this.shift[i]) / this.scale[i], this.decimals[i]);
  }

  /** Writes `y` in the last picked unit with `extra` more decimals (reference-range bounds). */
  formatBound(y: number, extra = 0): string {
    const i = this.chosen;
    return fixed((y - this.shift[i]) / this.scale[i], Math.min(4, this.decimals[i] + extra));
  }
}

function affine(convert: Convert, unit: string): [number, number] {
  const b = convert(0);
  const a = convert(1) - b;
  const probe = convert(100);
  if (!(a > 0) || Math.abs(probe - (100 * a + b)) > 1e-9 * Math.max(1, Math.abs(probe))) {
    throw new Error(`generate: the conversion of unit "${unit}" is not increasing and affine; give it an explicit inverse`);
  }
  return [a, b];
}
