/**
 * The measure registry (src/registry.ts) as plain data for the reference
 * jobs, so DuckDB and pandas apply exactly the engine's tables. Every vitals
 * conversion is linear, so each accepted unit becomes (factor, offset), read
 * off the registry's own function: convert(x) = factor·x + offset.
 */
import type { MeasureSpec } from '../../src/registry.js';

export interface LinearUnit {
  readonly unit: string;
  readonly factor: number;
  readonly offset: number;
}

export interface LinearMeasure {
  readonly name: string;
  readonly canonical: string;
  readonly plausible: readonly [number, number];
  readonly normal: readonly [number, number] | null;
  /** Non-canonical spellings (case-sensitive); the canonical unit is accepted in any case. */
  readonly units: readonly LinearUnit[];
}

/** The registry with each conversion reduced to factor and offset; throws if one is not linear. */
export function linearRegistry(specs: readonly MeasureSpec[]): LinearMeasure[] {
  return specs.map((s) => ({
    name: s.name,
    canonical: s.canonicalUnit,
    plausible: s.plausible,
    normal: s.normal,
    units: s.alternatives.map((a) => {
      const offset = a.convert(0);
      const factor = a.convert(1) - offset;
      const probe = a.convert(100);
      if (Math.abs(probe - (factor * 100 + offset)) > 1e-9 * Math.max(1, Math.abs(probe))) {
        throw new Error(`${s.name} ${a.unit}: conversion is not linear; the reference jobs cannot express it`);
      }
      return { unit: a.unit, factor, offset };
    }),
  }));
}
