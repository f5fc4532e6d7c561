/**
 * The rule-code catalogue (SPEC §2): every reason a row can be rejected, as a
 * stable `<field>.<problem>` string. README.md lists the same codes; a test
 * keeps the two in step.
 */
export const RULES = {
  'row.invalid_utf8': 'The record is not valid UTF-8.',
  'row.field_count': 'The record has more or fewer fields than the header.',
  'row.unterminated_quote': 'A quoted field is never closed (or runs past the maximum record size).',
  'row.bad_quote': 'A quote appears inside an unquoted field, or text follows a closing quote.',
  'hospital_id.missing': 'hospital_id is empty.',
  'hospital_id.invalid': 'hospital_id does not match ^[A-Za-z0-9_-]{1,32}$, or is a reserved name (ALL, __invalid__).',
  'patient_id.missing': 'patient_id is empty.',
  'patient_id.invalid': 'patient_id does not match ^[A-Za-z0-9_-]{1,64}$.',
  'date.missing': 'The date is empty.',
  'date.invalid': 'The date is not an ISO YYYY-MM-DD calendar date.',
  'date.in_future': 'The date is after the run\'s --as-of date.',
  'date.outside_period': 'The date is outside the --period month.',
  'vital_type.missing': 'vital_type is empty.',
  'vital_type.unknown': 'vital_type is not in the measure registry.',
  'test_type.missing': 'test_type is empty.',
  'test_type.unknown': 'test_type is not in the measure registry.',
  'value.missing': 'The value is empty.',
  'value.invalid': 'The value is not a finite decimal number.',
  'value.out_of_range': 'The value, in the canonical unit, is outside the plausible range for the measure.',
  'unit.missing': 'The unit is empty.',
  'unit.not_allowed': 'The unit is not accepted for the measure.',
  'reference_range.invalid': 'The reference range is not low-high, <high, <=high, >low, >=low or empty, a bound is not finite (as read or in the canonical unit), or low > high.',
  'duplicate.exact': 'An earlier row of the same hospital partition has exactly the same fields.',
} as const;

export type RuleCode = keyof typeof RULES;
export const RULE_CODES = Object.keys(RULES) as RuleCode[];

/** A rejected row's problem: plain data, safe to post across threads. */
export interface RowIssue {
  readonly code: RuleCode;
  readonly field: string;
}
