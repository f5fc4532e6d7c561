/**
 * The field rules of ./fields.ts over bytes instead of strings, for the
 * workers' fast path (src/transform/chunk.ts). They only ever need to be
 * right when they accept: anything they do not accept is re-checked by the
 * string rules, which decide. test/fastpath.test.ts checks the two paths
 * agree; test/bytes.test.ts checks the UTF-8 helpers against Node's
 * `isUtf8` and `String.prototype.trim`.
 */
import { daysFromCivil } from './fields.js';

/** Bytes String.prototype.trim removes in ASCII: \t \n \v \f \r and space. */
export const isTrimByte = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

/**
 * Length of the well-formed UTF-8 sequence at b[i] (a byte >= 0x80), or 0
 * when it is not one (Unicode Table 3-7: no overlongs, surrogates or code
 * points past U+10FFFF), as `isUtf8` judges a record.
 */
export function utf8SequenceLength(b: Uint8Array, i: number, end: number): number {
  const c = b[i];
  let n: number;
  // The second byte's range depends on the lead (the first continuation byte rules out overlongs and surrogates).
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f;
  } else return 0;
  if (i + n > end) return 0;
  if (b[i + 1] < lo || b[i + 1] > hi) return 0;
  for (let k = 2; k < n; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return 0;
  return n;
}

/**
 * Whether the first or the last character of bytes[start, end) (valid
 * UTF-8, ASCII whitespace already trimmed) may be one String.prototype.trim
 * removes beyond ASCII: U+00A0, or anything in U+1000–U+3FFF or
 * U+F000–U+FFFF, the blocks that hold U+1680, U+2000–U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000 and U+FEFF. Erring towards yes only sends
 * a row to the string path.
 */
export function mayEndInUnicodeSpace(b: Uint8Array, start: number, end: number): boolean {
  if (end <= start) return false;
  if (b[start] >= 0x80 && isSpaceLead(b, start)) return true;
  if (b[end - 1] < 0x80) return false;
  let lead = end - 1;
  while (lead > start && b[lead] >= 0x80 && b[lead] <= 0xbf) lead--;
  return isSpaceLead(b, lead);
}

const isSpaceLead = (b: Uint8Array, i: number): boolean => {
  const c = b[i];
  return (c === 0xc2 && b[i + 1] === 0xa0) || c === 0xe1 || c === 0xe2 || c === 0xe3 || c === 0xef;
};

/** [A-Za-z0-9_-] */
const ID_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  ID_BYTE[c] = /[A-Za-z0-9_-]/.test(ch) ? 1 : 0;
}

/** bytes[start, end) matches ^[A-Za-z0-9_-]{1,max}$ (the hospital and patient ID patterns). */
export function isIdBytes(b: Uint8Array, start: number, end: number, max: number): boolean {
  const len = end - start;
  if (len < 1 || len > max) return false;
  for (let i = start; i < end; i++) if (ID_BYTE[b[i]] === 0) return false;
  return true;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** A strict ISO `YYYY-MM-DD` real calendar date to its day number, or NaN (as parseIsoDate). */
export function parseDateBytes(b: Uint8Array, start: number, end: number): number {
  if (end - start !== 10 || b[start + 4] !== 45 || b[start + 7] !== 45) return NaN;
  const d0 = b[start] - 48;
  const d1 = b[start + 1] - 48;
  const d2 = b[start + 2] - 48;
  const d3 = b[start + 3] - 48;
  const m0 = b[start + 5] - 48;
  const m1 = b[start + 6] - 48;
  const a0 = b[start + 8] - 48;
  const a1 = b[start + 9] - 48;
  // Unsigned compare: one test per digit for both bounds.
  if ((d0 >>> 0) > 9 || (d1 >>> 0) > 9 || (d2 >>> 0) > 9 || (d3 >>> 0) > 9 || (m0 >>> 0) > 9 || (m1 >>> 0) > 9 || (a0 >>> 0) > 9 || (a1 >>> 0) > 9) return NaN;
  const y = d0 * 1000 + d1 * 100 + d2 * 10 + d3;
  const m = m0 * 10 + m1;
  const d = a0 * 10 + a1;
  if (y < 1 || m < 1 || m > 12 || d < 1) return NaN;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (d > (m === 2 && leap ? 29 : DAYS_IN_MONTH[m - 1])) return NaN;
  return daysFromCivil(y, m, d);
}

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * A plain decimal (`^[+-]?(\d+(\.\d*)?|\.\d+)$`) to the same double as
 * `Number()`, or NaN. With at most 15 digits the digits form an integer
 * below 2^53 and 10^k is exact, so one division gives the correctly
 * rounded value, which is what Number() returns; longer numbers return NaN
 * here and take the string path.
 */
export function parseDecimalBytes(b: Uint8Array, start: number, end: number): number {
  let i = start;
  let neg = false;
  if (i < end && (b[i] === 43 || b[i] === 45)) {
    neg = b[i] === 45;
    i++;
  }
  let m = 0;
  let digits = 0;
  let frac = 0;
  let seenDot = false;
  for (; i < end; i++) {
    const c = b[i];
    const d = c - 48;
    if ((d >>> 0) <= 9) {
      m = m * 10 + d;
      digits++;
      if (seenDot) frac++;
    } else if (c === 46 && !seenDot) seenDot = true;
    else return NaN;
  }
  if (digits === 0 || digits > 15) return NaN;
  // "." alone has no digit (caught above); ".5", "5." and "+.5" are fine, as in the string rule.
  const v = frac === 0 ? m : m / POW10[frac];
  return neg ? -v : v;
}

/** Trims ASCII whitespace off bytes[start, end): writes the trimmed bounds to out[at], out[at + 1]. */
export function trimBytes(b: Uint8Array, start: number, end: number, out: Int32Array, at: number): void {
  while (start < end && isTrimByte(b[start])) start++;
  while (end > start && isTrimByte(b[end - 1])) end--;
  out[at] = start;
  out[at + 1] = end;
}

/** Bytes equal to an ASCII string. */
export function bytesEqual(b: Uint8Array, start: number, end: number, s: string): boolean {
  if (end - start !== s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[start + i] !== s.charCodeAt(i)) return false;
  return true;
}
