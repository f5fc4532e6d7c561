/**
 * Field-level checks shared by both datasets: identifiers, ISO dates,
 * decimal numbers and reference ranges. Pure functions over strings; they
 * return NaN / null instead of throwing, so the hot loop never allocates an
 * exception.
 */

export const HOSPITAL_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** The partition of rows whose hospital_id is invalid. */
export const INVALID_HOSPITAL = '__invalid__';
/** The rollup rows' hospital_id in the statistics. */
export const ALL_HOSPITALS = 'ALL';
/** Names the pipeline itself gives meaning to: a row may not claim them. */
const RESERVED_HOSPITALS = new Set([INVALID_HOSPITAL, ALL_HOSPITALS]);

/** A hospital_id that may become a partition directory: the pattern, and not a reserved name. */
export function isValidHospitalId(h: string): boolean {
  return HOSPITAL_ID.test(h) && !RESERVED_HOSPITALS.has(h);
}
export const PATIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/** Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const digit = (s: string, i: number) => s.charCodeAt(i) - 48;
const DATE_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9];

/** Parses a strict ISO `YYYY-MM-DD` real calendar date to a day number, or NaN. */
export function parseIsoDate(s: string): number {
  if (s.length !== 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN;
  for (const i of DATE_DIGITS) {
    const c = digit(s, i);
    if (c < 0 || c > 9) return NaN;
  }
  const y = digit(s, 0) * 1000 + digit(s, 1) * 100 + digit(s, 2) * 10 + digit(s, 3);
  const m = digit(s, 5) * 10 + digit(s, 6);
  const d = digit(s, 8) * 10 + digit(s, 9);
  if (y < 1 || m < 1 || m > 12 || d < 1) return NaN;
  const max = m === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[m - 1];
  if (d > max) return NaN;
  return daysFromCivil(y, m, d);
}

/** `YYYY-MM` for a month index (year × 12 + month − 1). */
export function monthOf(monthIndex: number): string {
  const y = Math.floor(monthIndex / 12);
  return `${String(y).padStart(4, '0')}-${String((monthIndex % 12) + 1).padStart(2, '0')}`;
}

/** Formats a day number as YYYY-MM-DD. */
export function formatDay(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

/**
 * Parses a finite plain decimal (`72`, `36.6`, `-1.5`, `.5`), or NaN. No
 * exponents, hex, separators; digits beyond a double's range (`1` and 400
 * zeros, which Number() reads as Infinity) are not finite either.
 */
export function parseDecimal(s: string): number {
  if (!DECIMAL.test(s)) return NaN;
  const v = Number(s);
  return Number.isFinite(v) ? v : NaN;
}

export interface RefRange {
  low: number | null;
  high: number | null;
  /** Whether a value equal to the bound is inside (`<=`, `>=`, `a-b`) or outside (`<`, `>`). */
  lowInclusive: boolean;
  highInclusive: boolean;
}

const NUM = String.raw`([+-]?(?:\d+(?:\.\d*)?|\.\d+))`;
const RANGE = new RegExp(String.raw`^${NUM}\s*-\s*${NUM}$`);
const BOUND = new RegExp(String.raw`^(<=|<|>=|>)\s*${NUM}$`);

/**
 * Parses a reference range; null when it is none of the accepted forms, a
 * bound is not finite (too many digits for a double) or low > high. Empty
 * is handled by the caller.
 */
export function parseRefRange(s: string): RefRange | null {
  let m = RANGE.exec(s);
  if (m) {
    const low = Number(m[1]);
    const high = Number(m[2]);
    if (!Number.isFinite(low) || !Number.isFinite(high) || !(low <= high)) return null;
    return { low, high, lowInclusive: true, highInclusive: true };
  }
  m = BOUND.exec(s);
  if (m) {
    const v = Number(m[2]);
    if (!Number.isFinite(v)) return null;
    switch (m[1]) {
      case '<':
        return { low: null, high: v, lowInclusive: true, highInclusive: false };
      case '<=':
        return { low: null, high: v, lowInclusive: true, highInclusive: true };
      case '>':
        return { low: v, high: null, lowInclusive: false, highInclusive: true };
      default:
        return { low: v, high: null, lowInclusive: true, highInclusive: true };
    }
  }
  return null;
}

export const FLAG_NONE = 0;
export const FLAG_L = 1;
export const FLAG_N = 2;
export const FLAG_H = 3;
export const FLAG_TEXT = [null, 'L', 'N', 'H'] as const;

/** L below the range, H above it, else N. A value on a strict bound is outside. */
export function flagFor(v: number, r: RefRange): number {
  if (r.low !== null && (v < r.low || (!r.lowInclusive && v === r.low))) return FLAG_L;
  if (r.high !== null && (v > r.high || (!r.highInclusive && v === r.high))) return FLAG_H;
  return FLAG_N;
}

/** Month bounds (day numbers, inclusive) for `YYYY-MM`, or null when malformed. */
export function monthBounds(period: string): { first: number; last: number } | null {
  if (!/^\d{4}-\d{2}$/.test(period)) return null;
  const first = parseIsoDate(`${period}-01`);
  if (Number.isNaN(first)) return null;
  const y = Number(period.slice(0, 4));
  const m = Number(period.slice(5, 7));
  const last = daysFromCivil(y, m, m === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[m - 1]);
  return { first, last };
}
