import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COLUMNS, type Dataset } from '../src/registry.js';
import type { RowIssue } from '../src/rules/codes.js';
import { parseIsoDate } from '../src/rules/fields.js';
import { checkRow, emptyCheckedRow, ruleContext } from '../src/rules/row.js';
import { zodRuleCodes } from '../src/rules/schema.js';

// Fragments mixing valid and invalid values, so generated rows hit every rule.
const pick = (xs: string[]) => fc.constantFrom(...xs);
const hospital = pick(['H001', 'h-2_x', '', 'H 01', '../etc', 'A'.repeat(32), 'A'.repeat(33)]);
const patient = pick(['P1', 'MRN-0042', '', 'a/b', 'x y', 'p'.repeat(64), 'p'.repeat(65)]);
const date = pick(['2024-03-15', '2024-02-29', '2023-02-29', '2024-13-01', '03/15/2024', '', '2031-01-01', '2024-04-30', '2024-04-31', '2024-04-01']);
// Digits past a double's range (Number() gives Infinity) are not finite decimals.
const HUGE = '1' + '0'.repeat(400);
const value = pick(['72', '36.6', '-1.5', '.5', '98.6', '1e3', 'NaN', 'Infinity', '0x1A', '1,000', '', '5000', '7', '140', '0', HUGE, '-' + HUGE]);
const vital = pick(['heart_rate', 'temperature', 'weight', 'height', 'oxygen_saturation', 'blood_pressure_systolic', 'blood_sugar', '']);
const vitalUnit = pick(['bpm', 'BPM', '/min', 'F', '°F', 'celsius', 'C', 'kg', 'lb', 'LB', 'cm', 'in', 'm', '%', 'mmHg', 'mm[Hg]', '', 'furlongs']);
const lab = pick(['glucose', 'cholesterol', 'hba1c', 'creatinine', 'hemoglobin', 'sodium', 'potassium', 'vitamin_q', '']);
const labUnit = pick(['mg/dL', 'MG/DL', 'mmol/L', 'mmol/mol', '%', 'umol/L', 'µmol/L', 'g/dL', 'g/L', 'mEq/L', '', 'kg']);
const range = pick(['70-100', '3.5 - 5.1', '<200', '<=5.6', '>60', '>=3.5', '', 'abc', '100-70', '70–100', `0-${HUGE}`, `>=${HUGE}`, `<${HUGE}`, `0-1${'0'.repeat(308)}`, `>-1${'0'.repeat(308)}`]);

const CTX = { asOf: '2026-01-31', period: null };
const PERIOD_CTX = { asOf: '2026-01-31', period: '2024-04' };

function fastCodes(dataset: Dataset, ctx: { asOf: string; period: string | null }, fields: string[]): string[] {
  const period = ctx.period ? { first: parseIsoDate(`${ctx.period}-01`), last: parseIsoDate(`${ctx.period}-30`) } : null;
  const rc = ruleContext(dataset, parseIsoDate(ctx.asOf), period);
  const issues: RowIssue[] = [];
  checkRow(rc, fields, emptyCheckedRow(), issues);
  return issues.map((i) => i.code).sort();
}

describe('the fast path agrees with the zod contract', () => {
  it.each([
    ['vitals', CTX],
    ['vitals', PERIOD_CTX],
  ] as const)('%s rows (period %o)', (dataset, ctx) => {
    fc.assert(
      fc.property(hospital, date, patient, vital, value, vitalUnit, (...f) => {
        const row = Object.fromEntries(COLUMNS[dataset].map((c, i) => [c, f[i]]));
        expect(fastCodes(dataset, ctx, f)).toEqual(zodRuleCodes(dataset, ctx, row).sort());
      }),
      { numRuns: 3000 },
    );
  });

  it('labs rows', () => {
    fc.assert(
      fc.property(hospital, date, patient, lab, value, range, labUnit, (...f) => {
        const row = Object.fromEntries(COLUMNS.labs.map((c, i) => [c, f[i]]));
        expect(fastCodes('labs', CTX, f)).toEqual(zodRuleCodes('labs', CTX, row).sort());
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts a clean row in both', () => {
    const f = ['H001', '2024-03-15', 'P1', 'temperature', '98.6', 'F'];
    expect(fastCodes('vitals', CTX, f)).toEqual([]);
    expect(zodRuleCodes('vitals', CTX, Object.fromEntries(COLUMNS.vitals.map((c, i) => [c, f[i]])))).toEqual([]);
  });
});
