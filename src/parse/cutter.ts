/**
 * Finding record boundaries in a byte stream without parsing it: the
 * coordinator's only CSV knowledge. In RFC 4180 a LF ends a record exactly
 * when an even number of quote bytes precede it since the record started,
 * so one pass of `indexOf('"')` (quotes are rare) gives the last safe cut.
 *
 * A quote that is never closed would swallow the rest of the file; once an
 * open record grows past `maxRecordBytes`, we give up on it: the record is
 * cut at its first LF (the parser will reject it as `row.unterminated_quote`)
 * and scanning resumes on the next line. See docs/ARCHITECTURE.md.
 */
const LF = 0x0a;
const QUOTE = 0x22;

/**
 * Returns the offset just past the last LF in buf[0, len) that ends a record
 * (even quote parity, counting from 0, which must be a record start), or 0
 * when there is none. Also reports the quote parity at `len`.
 */
export function lastRecordCut(buf: Buffer, len: number): { cut: number; openQuote: boolean } {
  // The quotes before `len` (rare in most files, but some sources quote every field).
  let quotes = 0;
  for (let q = buf.indexOf(QUOTE, 0); q !== -1 && q < len; q = buf.indexOf(QUOTE, q + 1)) quotes++;
  const openQuote = quotes % 2 === 1;
  // Walk back from the end, keeping the parity of the quotes before `hi`:
  // the last LF with even parity ends a record. Nothing is stored, so a
  // chunk of quoted fields costs no memory, and each byte is searched at
  // most once for a LF and once for a quote (linear however the quotes fall).
  let odd = openQuote;
  let hi = len; // exclusive bound of what is left to search
  let q = hi > 0 ? buf.lastIndexOf(QUOTE, hi - 1) : -1;
  let lf = hi > 0 ? buf.lastIndexOf(LF, hi - 1) : -1;
  while (lf !== -1) {
    if (q > lf) {
      // A quote between the LF and `hi`: step back over it (the LF is still the last one before it).
      odd = !odd;
      hi = q;
      q = hi > 0 ? buf.lastIndexOf(QUOTE, hi - 1) : -1;
      continue;
    }
    if (!odd) return { cut: lf + 1, openQuote };
    hi = lf;
    lf = hi > 0 ? buf.lastIndexOf(LF, hi - 1) : -1;
  }
  return { cut: 0, openQuote };
}

/** Offset just past the first LF in buf[0, len), or `len` when there is none. */
export function firstLineEnd(buf: Buffer, len: number): number {
  const lf = buf.indexOf(LF, 0);
  return lf === -1 || lf >= len ? len : lf + 1;
}

/**
 * Splits a pending buffer into dispatchable pieces. `atEof`: no more bytes
 * will come, so the tail is a record too. Returns the cuts (exclusive end
 * offsets, increasing) and how many bytes remain pending.
 */
export function planCuts(buf: Buffer, len: number, atEof: boolean, maxRecordBytes: number): { cuts: number[]; consumed: number } {
  const cuts: number[] = [];
  let base = 0;
  for (;;) {
    const view = base === 0 ? buf : buf.subarray(base);
    const rest = len - base;
    if (rest <= 0) break;
    const { cut, openQuote } = lastRecordCut(view, rest);
    if (atEof) {
      if (!openQuote) {
        cuts.push(len);
        base = len;
        break;
      }
      // The tail after the last good cut holds an unterminated quote: keep
      // what precedes it, then give up on one line and look again.
      const step = cut > 0 ? cut : firstLineEnd(view, rest);
      cuts.push(base + step);
      base += step;
      continue;
    }
    if (cut > 0) {
      cuts.push(base + cut);
      base += cut;
      // The remainder is a partial record; if it is an over-long open quote, recover.
      const tail = len - base;
      if (tail > maxRecordBytes && openQuote) continue;
      break;
    }
    if (openQuote && rest > maxRecordBytes) {
      const one = firstLineEnd(view, rest);
      if (one < rest) {
        cuts.push(base + one);
        base += one;
        continue;
      }
    }
    break;
  }
  return { cuts, consumed: base };
}

