/**
 * Clean vital signs: plausible adult distributions per vital_type, blood
 * pressure drawn as a pair (diastolic below systolic for the same patient
 * and date), stable per-patient height and weight, and each hospital's own
 * unit habits (Fahrenheit, pounds, inches, UCUM spellings).
 */

import { indexMeasures, VITALS, type Dataset } from '../registry.js';
import type { HospitalProfile, Population } from './population.js';
import type { Prng } from './prng.js';
import type { Row } from './row.js';
import { clamp, VisitSource } from './source.js';
import { UnitTable, type UnitOption } from './units.js';

interface VitalModel {
  /** Probability that a visit records this vital. */
  readonly include: number;
  /** Clean values are clamped here (canonical unit), well inside the plausible range so rounding cannot leave it. */
  readonly clamp: readonly [number, number];
  readonly decimals: number;
  units(h: HospitalProfile): UnitOption[];
  draw(s: VitalsSource, rng: Prng): number;
}

const u = (unit: string, weight: number, decimals: number): UnitOption => ({ unit, weight, decimals });

// Trait keys: stable per-patient attributes (Population.trait).
const T_SEX = 1;
const T_HEIGHT = 2;
const T_WEIGHT = 3;
const T_HR = 4;
const T_BP = 5;
const T_FEVER = 6;

const MODELS: Readonly<Record<string, VitalModel>> = {
  heart_rate: {
    include: 0.95,
    clamp: [30, 220],
    decimals: 0,
    units: () => [u('bpm', 0.85, 0), u('/min', 0.08, 0), u('beats/min', 0.05, 0), u('BPM', 0.02, 0)],
    draw: (s, rng) => rng.normal(78 + 8 * s.trait(T_HR), 9),
  },
  blood_pressure_systolic: {
    include: 0.85,
    clamp: [70, 250],
    decimals: 0,
    units: () => [u('mmHg', 0.93, 0), u('mm[Hg]', 0.07, 0)],
    draw: (s) => s.systolic,
  },
  blood_pressure_diastolic: {
    include: 0.85,
    clamp: [40, 140],
    decimals: 0,
    units: () => [u('mmHg', 0.93, 0), u('mm[Hg]', 0.07, 0)],
    draw: (s) => s.diastolic,
  },
  respiratory_rate: {
    include: 0.6,
    clamp: [8, 40],
    decimals: 0,
    units: () => [u('breaths/min', 0.9, 0), u('/min', 0.1, 0)],
    draw: (_s, rng) => rng.normal(16, 2.5),
  },
  temperature: {
    include: 0.75,
    clamp: [34, 42],
    decimals: 1,
    units: (h) => {
      const c = 1 - h.imperial;
      const f = h.imperial;
      return [
        u('celsius', c * 0.55, 1), u('C', c * 0.25, 1), u('°C', c * 0.15, 1), u('Cel', c * 0.03, 1), u('Celsius', c * 0.02, 1),
        u('F', f * 0.5, 1), u('°F', f * 0.3, 1), u('fahrenheit', f * 0.15, 1), u('[degF]', f * 0.05, 1),
      ];
    },
    // A few febrile patients; otherwise N(36.9, 0.4).
    draw: (s, rng) => (s.trait(T_FEVER) < 0.04 ? rng.normal(38.6, 0.6) : rng.normal(36.9, 0.4)),
  },
  oxygen_saturation: {
    include: 0.8,
    clamp: [80, 100],
    decimals: 0,
    units: () => [u('%', 1, 0)],
    // Skewed high: 100 minus a half-normal, mostly 95–100.
    draw: (_s, rng) => 99.4 - Math.abs(rng.normal(0, 2.2)),
  },
  weight: {
    include: 0.3,
    clamp: [35, 200],
    decimals: 1,
    units: (h) => [u('kg', (1 - h.imperial) * 0.97, 1), u('KG', (1 - h.imperial) * 0.03, 1), u('lb', h.imperial * 0.9, 1), u('[lb_av]', h.imperial * 0.1, 1)],
    draw: (s, rng) => {
      const male = s.trait(T_SEX) < 0.49;
      return (male ? 85 : 71) + (male ? 15 : 14) * s.traitNormal(T_WEIGHT) + rng.normal(0, 0.8);
    },
  },
  height: {
    include: 0.08,
    clamp: [135, 210],
    decimals: 1,
    units: (h) => [u('cm', (1 - h.imperial) * 0.85, 1), u('m', (1 - h.imperial) * 0.15, 2), u('in', h.imperial * 0.9, 1), u('[in_i]', h.imperial * 0.1, 1)],
    draw: (s, rng) => {
      const male = s.trait(T_SEX) < 0.49;
      return (male ? 176 : 163) + (male ? 7 : 6.5) * s.traitNormal(T_HEIGHT) + rng.normal(0, 0.4);
    },
  },
};

/** A measure added to the registry without a model here: uniform over its normal (or central plausible) range. */
function genericModel(plausible: readonly [number, number], normal: readonly [number, number] | null): VitalModel {
  const [lo, hi] = normal ?? [plausible[0] + (plausible[1] - plausible[0]) / 4, plausible[1] - (plausible[1] - plausible[0]) / 4];
  return { include: 0.3, clamp: [lo, hi], decimals: 1, units: () => [], draw: (_s, rng) => lo + rng.float() * (hi - lo) };
}

const VITALS_INDEX = indexMeasures(VITALS);
const BP_SYS = VITALS_INDEX.byName.get('blood_pressure_systolic');
const BP_DIA = VITALS_INDEX.byName.get('blood_pressure_diastolic');

/** Clean vitals rows, one visit at a time. */
export class VitalsSource extends VisitSource {
  readonly dataset: Dataset = 'vitals';
  /** The blood-pressure pair of the current visit (mmHg, integers, diastolic < systolic). */
  systolic = 0;
  diastolic = 0;
  private readonly models: VitalModel[];
  private readonly units: UnitTable[][];

  constructor(pop: Population, dates: readonly string[], seed: number) {
    super(pop, VITALS_INDEX, dates, seed, 0x7a1);
    this.models = VITALS.map((spec) => MODELS[spec.name] ?? genericModel(spec.plausible, spec.normal));
    this.units = pop.hospitals.map((h) => this.models.map((m, i) => new UnitTable(VITALS_INDEX, i, m.units(h), m.decimals)));
  }

  /** Stable attribute of the current patient. */
  trait(k: number): number {
    return this.pop.trait(this.visit.hospital, this.visit.patient, k);
  }

  traitNormal(k: number): number {
    return this.pop.traitNormal(this.visit.hospital, this.visit.patient, k);
  }

  protected planVisit(push: (measure: number) => void): void {
    const rng = this.rng;
    const bp = rng.chance(MODELS.blood_pressure_systolic.include);
    let n = 0;
    for (let i = 0; i < this.models.length; i++) {
      const take = i === BP_SYS || i === BP_DIA ? bp : rng.chance(this.models[i].include);
      if (take) {
        push(i);
        n++;
      }
    }
    if (n === 0) push(0); // a visit records at least one vital
    if (bp) {
      const level = this.traitNormal(T_BP);
      const sys = Math.round(clamp(122 + 11 * level + rng.normal(0, 11), 80, 240));
      const dia = Math.round(clamp(78 + 7 * level + rng.normal(0, 7), 45, 130));
      this.systolic = sys;
      this.diastolic = Math.min(dia, sys - 15 - rng.int(10)); // pulse pressure of at least 15 mmHg
    }
  }

  protected fill(row: Row, measure: number): void {
    const model = this.models[measure];
    const table = this.units[row.hospitalIndex][measure];
    const y = clamp(model.draw(this, this.rng), model.clamp[0], model.clamp[1]);
    row.type = VITALS[measure].name;
    row.unit = table.pick(this.rng);
    row.value = table.format(y);
  }
}
