/**
 * The row contract in zod: the declarative statement of SPEC §2 that the
 * hand-written fast path (`checkRow` in ./row.ts) is checked against in the
 * tests (test/schema.test.ts runs both over generated rows and compares the
 * rule codes). `z.infer` gives the raw row types.
 *
 * Not on the hot path: zod builds an issue object per check, which costs
 * more than the rest of a row's processing (docs/decisions/0003-row-validation.md).
 */
import { z } from 'zod';
import { type Dataset, indexMeasures, MEASURES } from '../registry.js';
import type { RuleCode } from './codes.js';

const ID32 = /^[A-Za-z0-9_-]{1,32}$/;
const ID64 = /^[A-Za-z0-9_-]{1,64}$/;
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

export interface SchemaContext {
  /** The --as-of date, YYYY-MM-DD. */
  asOf: string;
  /** The --period month, YYYY-MM, or null. */
  period: string | null;
}

/** Raw rows as read (trimmed strings), one field per required column. */
export const RawVitalsRow = z.object({
  hospital_id: z.string(),
  measurement_date: z.string(),
  patient_id: z.string(),
  vital_type: z.string(),
  value: z.string(),
  unit: z.string(),
});
export const RawLabsRow = z.object({
  hospital_id: z.string(),
  test_date: z.string(),
  patient_id: z.string(),
  test_type: z.string(),
  result_value: z.string(),
  reference_range: z.string(),
  unit: z.string(),
});
export type RawVitalsRow = z.infer<typeof RawVitalsRow>;
export type RawLabsRow = z.infer<typeof RawLabsRow>;

const isoDate = z.iso.date();
const REF = /^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*-\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$|^(<=|<|>=|>)\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))$/;

/** A schema whose issues carry our rule codes in `params.code`. */
export function rowSchema(dataset: Dataset, ctx: SchemaContext) {
  const measures = indexMeasures(MEASURES[dataset]);
  const base = dataset === 'vitals' ? RawVitalsRow : RawLabsRow;
  return base.superRefine((row, issue) => {
    const r = row as Record<string, string>;
    const fail = (code: RuleCode, path: string) => issue.addIssue({ code: 'custom', path: [path], message: code, params: { code } });
    const dateKey = dataset === 'vitals' ? 'measurement_date' : 'test_date';
    const typeKey = dataset === 'vitals' ? 'vital_type' : 'test_type';
    const valueKey = dataset === 'vitals' ? 'value' : 'result_value';

    if (r.hospital_id === '') fail('hospital_id.missing', 'hospital_id');
    else if (!ID32.test(r.hospital_id) || r.hospital_id === 'ALL' || r.hospital_id === '__invalid__') fail('hospital_id.invalid', 'hospital_id');
    if (r.patient_id === '') fail('patient_id.missing', 'patient_id');
    else if (!ID64.test(r.patient_id)) fail('patient_id.invalid', 'patient_id');

    const d = r[dateKey];
    if (d === '') fail('date.missing', dateKey);
    else if (!isoDate.safeParse(d).success) fail('date.invalid', dateKey);
    else {
      if (d > ctx.asOf) fail('date.in_future', dateKey);
      if (ctx.period !== null && d.slice(0, 7) !== ctx.period) fail('date.outside_period', dateKey);
    }

    const m = measures.byName.get(r[typeKey]);
    if (r[typeKey] === '') fail(`${typeKey}.missing` as RuleCode, typeKey);
    else if (m === undefined) fail(`${typeKey}.unknown` as RuleCode, typeKey);

    const v = r[valueKey];
    const num = z.string().regex(DECIMAL).transform(Number).pipe(z.number().finite()).safeParse(v);
    if (v === '') fail('value.missing', valueKey);
    else if (!num.success) fail('value.invalid', valueKey);

    let convert: ((x: number) => number) | undefined;
    if (r.unit === '') fail('unit.missing', 'unit');
    else if (m !== undefined) {
      convert = measures.unitFor(m, r.unit);
      if (!convert) fail('unit.not_allowed', 'unit');
    }
    if (convert && num.success && m !== undefined) {
      const x = convert(num.data);
      const [lo, hi] = measures.specs[m].plausible;
      if (!(x >= lo && x <= hi)) fail('value.out_of_range', valueKey);
    }

    if (dataset === 'labs') {
      const rr = r.reference_range;
      const match = REF.exec(rr);
      // Every bound a finite number, as read and in the canonical unit (when the unit is known).
      const bounds = match ? [match[1], match[2], match[4]].filter((x) => x !== undefined).map(Number) : [];
      const finite = z.array(z.number().finite()).safeParse(convert ? [...bounds, ...bounds.map(convert)] : bounds).success;
      if (rr !== '' && (!match || !finite || (match[1] !== undefined && bounds[0] > bounds[1]))) fail('reference_range.invalid', 'reference_range');
    }
  });
}

/** The rule codes zod finds for a row (empty when it passes), in schema order. */
export function zodRuleCodes(dataset: Dataset, ctx: SchemaContext, row: Record<string, string>): RuleCode[] {
  const r = rowSchema(dataset, ctx).safeParse(row);
  if (r.success) return [];
  return r.error.issues.map((i) => (i as { params?: { code: RuleCode } }).params!.code);
}
