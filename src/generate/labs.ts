/**
 * Clean lab results: per-test distributions (mostly within the reference
 * range, some L/H), diabetic and renal patients, each laboratory's unit
 * system (conventional or SI) and its own way of printing reference ranges
 * (`70-100`, `3.5 - 5.1`, `<200`, `<=5.6`, `>12.0`, `>=3.5`, or empty).
 */

import { indexMeasures, LABS, type Dataset } from '../registry.js';
import { mix32, type Prng } from './prng.js';
import type { HospitalProfile, Population } from './population.js';
import type { Row } from './row.js';
import { clamp, VisitSource } from './source.js';
import { UnitTable, type UnitOption } from './units.js';

type RefForm = readonly ['-', number, number] | readonly ['<' | '<=' | '>' | '>=', number];

interface LabModel {
  include(s: LabsSource): number;
  /** Clean values are clamped here (canonical unit), well inside the plausible range. */
  readonly clamp: readonly [number, number];
  readonly decimals: number;
  units(h: HospitalProfile): UnitOption[];
  /** Reference ranges as laboratories print them, in the canonical unit. */
  readonly refs: readonly RefForm[];
  draw(s: LabsSource, rng: Prng): number;
}

const u = (unit: string, weight: number, decimals: number): UnitOption => ({ unit, weight, decimals });

const T_SEX = 1;
const T_DIABETIC = 11;
const T_CKD = 12;
const T_CHOL = 13;

const MODELS: Readonly<Record<string, LabModel>> = {
  glucose: {
    include: () => 0.7,
    clamp: [40, 600],
    decimals: 0,
    units: (h) => [u('mg/dL', (1 - h.si) * 0.93, 0), u('mg/dl', (1 - h.si) * 0.07, 0), u('mmol/L', h.si, 1)],
    refs: [['-', 70, 100], ['-', 74, 106], ['-', 70, 99]],
    draw: (s, rng) => (s.diabetic() ? rng.normal(155, 45) : rng.chance(0.06) ? rng.normal(125, 25) : rng.normal(91, 12)),
  },
  cholesterol: {
    include: () => 0.3,
    clamp: [90, 400],
    decimals: 0,
    units: (h) => [u('mg/dL', 1 - h.si, 0), u('mmol/L', h.si, 2)],
    refs: [['<', 200], ['<=', 200], ['-', 125, 200]],
    draw: (s, rng) => rng.normal(188 + 22 * s.traitNormal(T_CHOL), 18),
  },
  hba1c: {
    include: (s) => (s.diabetic() ? 0.8 : 0.2),
    clamp: [4, 15],
    decimals: 1,
    units: (h) => [u('%', 1 - h.si * 0.6, 1), u('mmol/mol', h.si * 0.6, 0)],
    refs: [['<', 5.7], ['<=', 5.6], ['-', 4.0, 5.6]],
    draw: (s, rng) => (s.diabetic() ? rng.normal(7.6, 1.3) : rng.normal(5.3, 0.35)),
  },
  creatinine: {
    include: () => 0.6,
    clamp: [0.3, 12],
    decimals: 2,
    units: (h) => [u('mg/dL', 1 - h.si, 2), u('umol/L', h.si * 0.6, 0), u('µmol/L', h.si * 0.4, 0)],
    refs: [['-', 0.6, 1.2], ['-', 0.7, 1.3], ['<=', 1.3]],
    draw: (s, rng) => (s.trait(T_CKD) < 0.05 ? rng.normal(2.4, 0.9) : s.male() ? rng.normal(1.0, 0.18) : rng.normal(0.8, 0.15)),
  },
  hemoglobin: {
    include: () => 0.5,
    clamp: [6, 21],
    decimals: 1,
    units: (h) => [u('g/dL', 1 - h.si, 1), u('g/L', h.si, 0)],
    refs: [['-', 12.0, 17.5], ['-', 13.5, 17.5], ['>=', 12.0], ['>', 12.0]],
    draw: (s, rng) => (s.male() ? rng.normal(15, 1.3) : rng.normal(13.4, 1.2)),
  },
  sodium: {
    include: () => 0.6,
    clamp: [118, 165],
    decimals: 0,
    units: () => [u('mmol/L', 0.8, 0), u('mEq/L', 0.2, 0)],
    refs: [['-', 135, 145], ['-', 136, 145]],
    draw: (_s, rng) => rng.normal(140, 2.8),
  },
  potassium: {
    include: () => 0.6,
    clamp: [2.4, 7.2],
    decimals: 1,
    units: () => [u('mmol/L', 0.8, 1), u('mEq/L', 0.2, 1)],
    refs: [['-', 3.5, 5.1], ['-', 3.5, 5.0], ['>=', 3.5]],
    draw: (_s, rng) => rng.normal(4.3, 0.42),
  },
};

/** A test added to the registry without a model here: uniform over its default reference (or central plausible) range. */
function genericModel(plausible: readonly [number, number], normal: readonly [number, number] | null): LabModel {
  const [lo, hi] = normal ?? [plausible[0] + (plausible[1] - plausible[0]) / 4, plausible[1] - (plausible[1] - plausible[0]) / 4];
  return { include: () => 0.3, clamp: [lo, hi], decimals: 2, units: () => [], refs: [['-', lo, hi]], draw: (_s, rng) => lo + rng.float() * (hi - lo) };
}

const LABS_INDEX = indexMeasures(LABS);

/** Share of results printed without a reference range (the validator then uses the default). */
const EMPTY_REF = 0.1;
/** Share of results with another of the test's reference forms than the laboratory's usual one. */
const OTHER_REF = 0.04;

/** Clean lab rows, one blood draw (visit) at a time. */
export class LabsSource extends VisitSource {
  readonly dataset: Dataset = 'labs';
  private readonly models: LabModel[];
  private readonly units: UnitTable[][];
  /** Per hospital and test: the reference form the laboratory prints. */
  private readonly usualRef: number[][];
  /** Rendered reference ranges, by hospital, test, unit and form (a handful of strings). */
  private readonly refCache = new Map<number, string>();

  constructor(pop: Population, dates: readonly string[], seed: number) {
    super(pop, LABS_INDEX, dates, seed, 0x1ab);
    this.models = LABS.map((spec) => MODELS[spec.name] ?? genericModel(spec.plausible, spec.normal));
    this.units = pop.hospitals.map((h) => this.models.map((m, i) => new UnitTable(LABS_INDEX, i, m.units(h), m.decimals)));
    this.usualRef = pop.hospitals.map((h) => this.models.map((m, i) => mix32(h.refVariant ^ (i * 0x9e3779b1)) % m.refs.length));
  }

  trait(k: number): number {
    return this.pop.trait(this.visit.hospital, this.visit.patient, k);
  }

  traitNormal(k: number): number {
    return this.pop.traitNormal(this.visit.hospital, this.visit.patient, k);
  }

  male(): boolean {
    return this.trait(T_SEX) < 0.49;
  }

  diabetic(): boolean {
    return this.trait(T_DIABETIC) < 0.15;
  }

  protected planVisit(push: (measure: number) => void): void {
    let n = 0;
    for (let i = 0; i < this.models.length; i++) {
      if (this.rng.chance(this.models[i].include(this))) {
        push(i);
        n++;
      }
    }
    if (n === 0) push(0);
  }

  protected fill(row: Row, measure: number, hospital: HospitalProfile): void {
    const model = this.models[measure];
    const h = row.hospitalIndex;
    const table = this.units[h][measure];
    const rng = this.rng;
    const y = clamp(model.draw(this, rng), model.clamp[0], model.clamp[1]);
    row.type = LABS[measure].name;
    row.unit = table.pick(rng);
    row.value = table.format(y);
    const r = rng.float();
    if (r < EMPTY_REF) {
      row.ref = '';
      return;
    }
    const form = r < EMPTY_REF + OTHER_REF ? rng.int(model.refs.length) : this.usualRef[h][measure];
    const key = ((h * 64 + measure) * 16 + table.chosen) * 16 + form;
    let ref = this.refCache.get(key);
    if (ref === undefined) {
      ref = renderRef(model.refs[form], table, hospital.refSpaced);
      this.refCache.set(key, ref);
    }
    row.ref = ref;
  }
}

function renderRef(form: RefForm, table: UnitTable, spaced: boolean): string {
  if (form[0] === '-') {
    const sep = spaced ? ' - ' : '-';
    return table.formatBound(form[1]) + sep + table.formatBound(form[2]);
  }
  return form[0] + table.formatBound(form[1]);
}
