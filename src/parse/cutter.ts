/**
 * Finding record boundaries in a byte stream without parsing it: the
 * coordinator's only CSV knowledge. In RFC 4180 a LF ends a record exactly
 * when an even number of quote bytes precede it since the record started,
 * so the quotes' parity (`oddQuotes`) and a walk back from the end give the
 * last safe cut.
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
  const openQuote = oddQuotes(buf, len);
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

/** Quotes counted one `indexOf` at a time before the density is checked, and the mean gap (bytes) below which they count as dense. */
const DENSE_CHECK = 256;
const DENSE_GAP = 48;

/**
 * Whether buf[0, len) holds an odd number of quote bytes. Quotes are rare in
 * most files and found one native `indexOf` at a time; where they come
 * densely (some sources quote every field: one call every few bytes costs
 * more than reading the bytes), the rest is counted a word at a time.
 */
export function oddQuotes(buf: Buffer, len: number): boolean {
  let odd = false;
  let n = 0;
  let mark = 0;
  for (let q = buf.indexOf(QUOTE, 0); q !== -1 && q < len; q = buf.indexOf(QUOTE, q + 1)) {
    odd = !odd;
    if (++n < DENSE_CHECK) continue;
    // (A multiple of DENSE_CHECK quotes so far: an even number, so the rest decides.)
    if (q - mark < DENSE_CHECK * DENSE_GAP) return oddQuoteWords(buf, q + 1, len);
    n = 0;
    mark = q;
  }
  return odd;
}

/**
 * Whether buf[from, to) holds an odd number of quote bytes, read four bytes
 * at a time: in each word, the bytes equal to the quote get their high bit
 * set (the exact zero-byte test on word ^ 0x22222222), and the parity of all
 * those bits is the parity of the count.
 */
export function oddQuoteWords(buf: Uint8Array, from: number, to: number): boolean {
  let odd = 0;
  let i = from;
  // Bytes up to a 4-byte-aligned address, so the words can be read through a Uint32Array.
  while (i < to && (buf.byteOffset + i) % 4 !== 0) if (buf[i++] === QUOTE) odd ^= 1;
  const words = (to - i) >>> 2;
  if (words > 0) {
    const w = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    let acc = 0;
    for (let k = 0; k < words; k++) {
      const x = w[k] ^ 0x22222222;
      acc ^= ~(((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x | 0x7f7f7f7f);
    }
    acc ^= acc >>> 16;
    acc ^= acc >>> 8;
    odd ^= (acc >>> 7) & 1;
    i += 4 * words;
  }
  while (i < to) if (buf[i++] === QUOTE) odd ^= 1;
  return odd === 1;
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

