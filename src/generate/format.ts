/**
 * Text helpers for the generator's hot loop: fixed-decimal numbers without
 * `toFixed`, calendar days as ISO strings, and RFC 4180 quoting.
 */

const POW10 = [1, 10, 100, 1000, 10000];
const FRACTIONS: readonly (readonly string[])[] = POW10.map((p, d) =>
  Array.from({ length: p }, (_, i) => (d === 0 ? '' : String(i).padStart(d, '0'))),
);

/**
 * Formats `x` with exactly `decimals` (0–4) digits after the point, rounding
 * half away from zero: integer arithmetic and a table of fraction strings
 * instead of `toFixed`, which is several times slower in a 10M-row loop.
 */
export function fixed(x: number, decimals: number): string {
  const p = POW10[decimals];
  const n = Math.round(Math.abs(x) * p);
  const sign = x < 0 && n !== 0 ? '-' : '';
  if (decimals === 0) return sign + n;
  const whole = Math.floor(n / p);
  return sign + whole + '.' + FRACTIONS[decimals][n - whole * p];
}

/** The value `fixed(x, decimals)` denotes, as a number (for clamping after rounding). */
export function rounded(x: number, decimals: number): number {
  const p = POW10[decimals];
  const n = Math.round(Math.abs(x) * p);
  return (x < 0 ? -n : n) / p;
}

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/** Days in month `m` (1–12) of year `y`. */
export function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeap(y) ? 29 : 28) : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
}

export { isLeap };

const pad2 = (n: number) => (n < 10 ? '0' + n : String(n));

/** `YYYY-MM-DD` for a year of four digits. */
export function isoDate(y: number, m: number, d: number): string {
  return `${y}-${pad2(m)}-${pad2(d)}`;
}

/** Every date of the first `months` months of `year`, in order, as ISO strings. */
export function calendar(year: number, months: number): string[] {
  const out: string[] = [];
  for (let m = 1; m <= months; m++) {
    const n = daysInMonth(year, m);
    for (let d = 1; d <= n; d++) out.push(isoDate(year, m, d));
  }
  return out;
}

const NEEDS_QUOTES = /[",\r\n]/;

/** A CSV field, quoted (with doubled quotes) only when its content requires it. */
export function csvField(s: string): string {
  return NEEDS_QUOTES.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/** A CSV field always quoted, as some exporters do (content must be safe or is escaped). */
export function quoted(s: string): string {
  return '"' + (s.includes('"') ? s.replace(/"/g, '""') : s) + '"';
}

/** Number of line feeds in `s`: a quoted field with a newline spans several physical lines. */
export function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
