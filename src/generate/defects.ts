/**
 * Labelled defects. A defective row starts as a clean row and gets exactly
 * one primary problem, chosen so that the rule codes it must produce are
 * certain under SPEC §2 (assuming `--as-of` at the end of the generated year
 * and no `--period`). The label lists only those codes; the validator may
 * add others (an unknown type also makes the unit unverifiable, say).
 *
 * Every choice that depends on the registry (unknown type names, wrong
 * units, out-of-range values) is checked against the registry itself, so a
 * label can't claim a problem the registry would accept.
 */

import type { Dataset, MeasureIndex } from '../registry.js';
import type { RuleCode } from '../rules/codes.js';
import { countNewlines, daysInMonth, fixed, isLeap, isoDate } from './format.js';
import { Prng, WeightedPicker } from './prng.js';
import { cleanLine, escapedLine, fieldsOf, type Row } from './row.js';

/** The kinds of defect, with their relative frequency per dataset. */
const KINDS = [
  ['value.out_of_range', 20, 20],
  ['value.invalid', 10, 10],
  ['value.missing', 5, 5],
  ['date.invalid', 9, 9],
  ['date.missing', 3, 3],
  ['date.in_future', 5, 5],
  ['unit.not_allowed', 9, 8],
  ['unit.missing', 2, 2],
  ['type.unknown', 5, 5],
  ['type.missing', 1, 1],
  ['patient_id.invalid', 5, 5],
  ['patient_id.missing', 2, 2],
  ['hospital_id.invalid', 3, 3],
  ['hospital_id.missing', 1, 1],
  ['reference_range.invalid', 0, 8],
  ['duplicate.exact', 10, 10],
  ['row.field_count', 5, 5],
] as const;

type Kind = (typeof KINDS)[number][0];

/** Recent clean lines (and a few much older ones) to repeat as exact duplicates. */
class LineMemory {
  private readonly recent: string[] = [];
  private readonly old: string[] = [];
  private count = 0;
  private static readonly RECENT = 2048;
  private static readonly OLD = 256;
  private static readonly OLD_EVERY = 5003;

  remember(line: string): void {
    const n = this.count++;
    this.recent[n % LineMemory.RECENT] = line;
    if (n % LineMemory.OLD_EVERY === 0) this.old[Math.floor(n / LineMemory.OLD_EVERY) % LineMemory.OLD] = line;
  }

  /** An earlier clean line, usually recent, sometimes far back; undefined before the first. */
  recall(rng: Prng): string | undefined {
    if (this.count === 0) return undefined;
    const pool = this.old.length > 0 && rng.chance(0.25) ? this.old : this.recent;
    return pool[rng.int(pool.length)];
  }
}

export interface DefectContext {
  readonly dataset: Dataset;
  readonly index: MeasureIndex;
  readonly year: number;
  readonly seed: number;
}

/** Turns clean rows into labelled defective lines. */
export class DefectInjector {
  /** Codes of the last injected defect, `;`-separated. */
  codes = '';
  /** Physical lines beyond the first taken by the last injected line (embedded newlines). */
  extraLines = 0;
  private readonly rng: Prng;
  private readonly kinds: Kind[];
  private readonly picker: WeightedPicker;
  private readonly memory = new LineMemory();
  /** Per measure: type names the registry does not know (near misses first). */
  private readonly unknownTypes: string[][];
  private readonly wrongUnits: string[][];
  private readonly typeCode: RuleCode;
  private readonly numericField = 4;

  constructor(private readonly ctx: DefectContext) {
    this.rng = new Prng(ctx.seed, ctx.dataset === 'vitals' ? 0xdef1 : 0xdef2);
    const col = ctx.dataset === 'vitals' ? 1 : 2;
    const kinds = KINDS.filter((k) => k[col] > 0);
    this.kinds = kinds.map((k) => k[0]);
    this.picker = new WeightedPicker(kinds.map((k) => k[col]));
    this.typeCode = ctx.dataset === 'vitals' ? 'vital_type.unknown' : 'test_type.unknown';
    const generic = ctx.dataset === 'vitals' ? UNKNOWN_VITALS : UNKNOWN_LABS;
    this.unknownTypes = ctx.index.specs.map((spec) => {
      const near = (NEAR_MISS_TYPES[spec.name] ?? []).filter((t) => !ctx.index.byName.has(t));
      return near.length > 0 ? near : generic.filter((t) => !ctx.index.byName.has(t));
    });
    this.wrongUnits = ctx.index.specs.map((spec, i) =>
      [...(NEAR_MISS_UNITS[spec.name] ?? []), ...OTHER_UNITS].filter((unit) => unit.trim() !== '' && ctx.index.unitFor(i, unit.trim()) === undefined),
    );
  }

  /** Records a clean line as a candidate for later exact duplicates. */
  remember(line: string): void {
    this.memory.remember(line);
  }

  /** Makes `row` (a clean row, already consumed) defective; returns its line and sets `codes` and `extraLines`. */
  inject(row: Row): string {
    const kind = this.kinds[this.picker.pick(this.rng)];
    this.extraLines = 0;
    if (kind === 'duplicate.exact') {
      const earlier = this.memory.recall(this.rng);
      if (earlier !== undefined) {
        this.codes = 'duplicate.exact';
        return earlier;
      }
      return this.inject(row); // nothing to repeat yet
    }
    if (kind === 'row.field_count') {
      this.codes = 'row.field_count';
      return this.fieldCount(row);
    }
    this.codes = this.mutate(kind, row);
    const line = escapedLine(fieldsOf(this.ctx.dataset, row), row.quoteAll, this.numericField);
    this.extraLines = countNewlines(line) - 1;
    return line;
  }

  private mutate(kind: Exclude<Kind, 'duplicate.exact' | 'row.field_count'>, row: Row): RuleCode {
    const rng = this.rng;
    switch (kind) {
      case 'value.out_of_range':
        this.outOfRange(row);
        return 'value.out_of_range';
      case 'value.invalid':
        row.value = rng.pick(this.ctx.dataset === 'labs' && rng.chance(0.4) ? LAB_TEXT_VALUES : invalidNumbers(row.value));
        return 'value.invalid';
      case 'value.missing':
        row.value = '';
        return 'value.missing';
      case 'date.invalid':
        row.date = this.invalidDate(row.date);
        return 'date.invalid';
      case 'date.missing':
        row.date = '';
        return 'date.missing';
      case 'date.in_future': {
        // Far enough ahead to be in the future for any plausible --as-of (typo'd years).
        const y = this.ctx.year + 7 + rng.int(24);
        const m = 1 + rng.int(12);
        row.date = isoDate(y, m, 1 + rng.int(daysInMonth(y, m)));
        return 'date.in_future';
      }
      case 'unit.not_allowed': {
        const pool = this.wrongUnits[row.measure];
        if (pool.length === 0) return this.mutate('value.missing', row);
        row.unit = rng.pick(pool);
        return 'unit.not_allowed';
      }
      case 'unit.missing':
        row.unit = '';
        return 'unit.missing';
      case 'type.unknown': {
        const pool = this.unknownTypes[row.measure];
        if (pool.length === 0) return this.mutate('value.missing', row);
        row.type = rng.pick(pool);
        return this.typeCode;
      }
      case 'type.missing':
        row.type = '';
        return this.ctx.dataset === 'vitals' ? 'vital_type.missing' : 'test_type.missing';
      case 'patient_id.invalid':
        row.patient = this.invalidPatient(row.patient);
        return 'patient_id.invalid';
      case 'patient_id.missing':
        row.patient = '';
        return 'patient_id.missing';
      case 'hospital_id.invalid':
        row.hospital = rng.pick(invalidHospitals(row.hospital));
        return 'hospital_id.invalid';
      case 'hospital_id.missing':
        row.hospital = '';
        return 'hospital_id.missing';
      case 'reference_range.invalid':
        row.ref = this.invalidRef(row.ref);
        return 'reference_range.invalid';
    }
  }

  /**
   * A value outside the plausible range once converted: a unit mix-up
   * (98.6 labelled C, 175 labelled m), a slipped decimal point (720 bpm),
   * or a device zero / absurd reading. Each candidate is checked with the
   * registry's own conversion.
   */
  private outOfRange(row: Row): void {
    const { index } = this.ctx;
    const spec = index.specs[row.measure];
    const [lo, hi] = spec.plausible;
    const outside = (value: string, unit: string): boolean => {
      const convert = index.unitFor(row.measure, unit);
      const x = convert ? convert(Number(value)) : NaN;
      return Number.isFinite(x) && (x < lo || x > hi);
    };
    const rng = this.rng;
    const r = rng.float();
    if (r < 0.3) {
      const units = [spec.canonicalUnit, ...spec.alternatives.map((a) => a.unit)];
      const start = rng.int(units.length);
      for (let k = 0; k < units.length; k++) {
        const unit = units[(start + k) % units.length];
        if (unit !== row.unit && outside(row.value, unit)) {
          row.unit = unit;
          return;
        }
      }
    } else if (r < 0.55) {
      const shifted = row.value.includes('.') ? row.value.replace('.', '') : row.value + '0';
      // '095' would test leading-zero parsing, not the range: skip those.
      if (!shifted.startsWith('0') && outside(shifted, row.unit)) {
        row.value = shifted;
        return;
      }
    }
    row.unit = spec.canonicalUnit;
    if (lo >= 1 && rng.chance(0.3)) row.value = rng.chance(0.75) ? '0' : '-' + (1 + rng.int(99)); // device zero, sign slip
    else row.value = fixed(Math.ceil(hi * (1.05 + rng.float() * 3)) + 1, 0);
    if (!outside(row.value, row.unit)) row.value = fixed(Math.ceil(Math.abs(hi) * 10) + 1, 0);
  }

  private invalidDate(date: string): string {
    const y = Number(date.slice(0, 4));
    const mm = date.slice(5, 7);
    const dd = date.slice(8, 10);
    const m = Number(mm);
    const d = Number(dd);
    const options = [
      `${y}-02-30`,
      `${y}-02-31`,
      `${y}-04-31`,
      `${y}-11-31`,
      `${y}-13-${dd}`,
      `${y}-00-${dd}`,
      `${y}-${mm}-00`,
      `${y}-${mm}-32`,
      `${mm}/${dd}/${y}`,
      `${dd}.${mm}.${y}`,
      `${y}/${mm}/${dd}`,
      `${y}${mm}${dd}`,
      `${date}T08:30:00`,
      `${dd}-${mm}-${y}`,
      'unknown',
    ];
    if (m < 10 || d < 10) options.push(`${y}-${m}-${d}`);
    if (!isLeap(y)) options.push(`${y}-02-29`);
    return this.rng.pick(options);
  }

  private invalidPatient(id: string): string {
    const rng = this.rng;
    const cut = 1 + rng.int(Math.max(1, id.length - 1));
    const a = id.slice(0, cut);
    const b = id.slice(cut);
    switch (rng.int(9)) {
      case 0:
        return a + ' ' + b;
      case 1:
        return a + '/' + b;
      case 2:
        return a + '.' + b;
      case 3:
        return id + '#';
      case 4:
        return 'é' + id;
      case 5:
        return id + 'X'.repeat(65 - id.length + rng.int(10)); // longer than 64
      case 6:
        return a + ',' + b; // quoted on output: a parser exercise, not a field-count problem
      case 7:
        return rng.chance(0.2) ? a + '\n' + b : "O'" + id + '"'; // embedded newline (two physical lines) or quotes
      default:
        return '../' + id;
    }
  }

  private invalidRef(ref: string): string {
    const rng = this.rng;
    const m = /^([0-9.]+)\s*-\s*([0-9.]+)$/.exec(ref);
    if (m && Number(m[1]) < Number(m[2]) && rng.chance(0.4)) return `${m[2]}-${m[1]}`; // swapped bounds
    return rng.pick(INVALID_REFS);
  }

  private fieldCount(row: Row): string {
    const fields = fieldsOf(this.ctx.dataset, row);
    const r = this.rng.float();
    if (r < 0.45) fields.splice(1 + this.rng.int(fields.length - 1), 1); // a field lost
    else if (r < 0.75) fields.push(''); // trailing comma
    else {
      // An unquoted thousands separator splits the value in two.
      const line = cleanLine(this.ctx.dataset, { ...row, quoteAll: false, quoteMask: 0, value: '1,' + String(100 + this.rng.int(900)) });
      return line;
    }
    return escapedLine(fields, row.quoteAll, -1);
  }
}

/** Names a source system might use for a measure, none of them in the registry (checked at start-up). */
const NEAR_MISS_TYPES: Readonly<Record<string, readonly string[]>> = {
  heart_rate: ['pulse', 'heartrate', 'hr', 'heart rate'],
  blood_pressure_systolic: ['bp_systolic', 'sbp', 'systolic'],
  blood_pressure_diastolic: ['bp_diastolic', 'dbp', 'diastolic'],
  respiratory_rate: ['resp_rate', 'rr', 'breathing_rate'],
  temperature: ['temp', 'body_temperature', 'temp_oral'],
  oxygen_saturation: ['spo2', 'o2_sat', 'sao2'],
  weight: ['body_weight', 'wt', 'bmi'],
  height: ['body_height', 'ht', 'length'],
  glucose: ['blood_sugar', 'glu', 'glucose_fasting'],
  cholesterol: ['chol', 'total_cholesterol', 'ldl'],
  hba1c: ['a1c', 'hemoglobin_a1c', 'hb_a1c'],
  creatinine: ['creat', 'cr', 'egfr'],
  hemoglobin: ['hgb', 'haemoglobin', 'hb'],
  sodium: ['na', 'serum_sodium'],
  potassium: ['k', 'serum_potassium'],
};
const UNKNOWN_VITALS = ['pain_score', 'gcs', 'pulse_pressure', 'blood_sugar'];
const UNKNOWN_LABS = ['vitamin_d', 'tsh', 'crp', 'troponin', 'alt'];

/** Plausible-looking spellings the registry does not accept, per measure. */
const NEAR_MISS_UNITS: Readonly<Record<string, readonly string[]>> = {
  heart_rate: ['beats per minute', 'b/min', 'Hz'],
  blood_pressure_systolic: ['mm Hg', 'cmH2O', 'kPa'],
  blood_pressure_diastolic: ['mm Hg', 'cmH2O', 'kPa'],
  respiratory_rate: ['bpm', 'breaths', '/s'],
  temperature: ['degF', 'deg C', 'K', '°'],
  oxygen_saturation: ['percent', 'pct', 'fraction'],
  weight: ['lbs', 'kgs', 'g', 'st'],
  height: ['inches', 'ft', 'mm'],
  glucose: ['mmol', 'mg%', 'g/L'],
  cholesterol: ['mmol', 'mg%', 'g/L'],
  hba1c: ['mmol', 'percent', 'mg/dL'],
  creatinine: ['umol', 'mcmol/L', 'mg/L'],
  hemoglobin: ['g/l', 'mmol/L', 'mg/dL'],
  sodium: ['meq/l', 'mg/dL', 'g/L'],
  potassium: ['meq/l', 'mg/dL', 'g/L'],
};
const OTHER_UNITS = ['kg', 'lb', 'cm', 'mmHg', 'bpm', '%', 'mg/dL', 'mmol/L', 'g/dL', 'celsius', 'F', 'U/L', 'ng/mL', 'mL'];

const INVALID_REFS = ['abc', 'normal', 'see comment', '70-', '<', '>=', '70 to 100', '70–100', '[70,100]', '1.2.3-4', 'neg'];

const LAB_TEXT_VALUES = ['pending', 'hemolyzed', 'QNS', 'see comment', 'cancelled'];

function invalidNumbers(value: string): string[] {
  return ['NaN', 'Infinity', '-Infinity', '0x48', '1,000', '1,250.5', value + '..5', value + 'a', '7.2.1', '--', '?', 'one hundred', '1e400'];
}

function invalidHospitals(id: string): string[] {
  return ['../etc', '..', id + '/..', id.slice(0, 1) + ' ' + id.slice(1), id + '.bak', 'C:\\temp', id + '*', 'H'.repeat(33), '/etc/passwd', id + ';rm -rf', 'Hôpital_1'];
}
