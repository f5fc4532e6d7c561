/**
 * Finding record boundaries in a byte stream without parsing it: the
 * coordinator's only CSV knowledge. It must cut exactly where the parser
 * (src/parse/csv.ts), reading the whole file in one piece, ends a record:
 * otherwise a valid record is split, or text inside a quoted field is read
 * as records of its own, and the outputs depend on the chunk size.
 *
 * The parser opens a quoted field only at a field's start; inside it, `""`
 * is a quote and any other quote closes it. A LF ends a record unless a
 * quoted field is open. So the rule is quote parity (a LF ends a record
 * when an even number of quotes precede it since the record started), but
 * for stray quotes: a quote met while no field is open that does not follow
 * a comma, a LF, a closing quote or the record's start sits inside an
 * unquoted field (`7"2`, text after a closing quote); the parser reports it
 * (`row.bad_quote`) and it opens nothing, so it must not count. Stray quotes
 * are checked as the quotes are counted and their offsets kept (rare), for
 * the walk back from the end to step over them (`lastRecordCut`).
 *
 * A quote that is never closed would swallow the rest of the file; once an
 * open record grows past `maxRecordBytes`, we give up on it: the record is
 * cut at its first LF (the parser will reject it as `row.unterminated_quote`)
 * and scanning resumes on the next line. See docs/ARCHITECTURE.md.
 */
const LF = 0x0a;
const COMMA = 0x2c;
const QUOTE = 0x22;

/** What the quotes of buf[0, len) leave: a quoted field open at `len`, and the offsets of the stray quotes (none: null). */
export interface QuoteScan {
  open: boolean;
  stray: number[] | null;
}

/**
 * Returns the offset just past the last LF in buf[0, len) that ends a record
 * (no quoted field open, counting from 0, which must be a record start), or
 * 0 when there is none. Also reports whether a quoted field is open at `len`.
 */
export function lastRecordCut(buf: Buffer, len: number): { cut: number; openQuote: boolean } {
  const { open: openQuote, stray } = scanQuotes(buf, len);
  // Walk back from the end, keeping whether a quoted field is open before
  // `hi`: the last LF with none open ends a record. Each quote but a stray
  // one flips it. Nothing is stored, so a chunk of quoted fields costs no
  // memory, and each byte is searched at most once for a LF and once for a
  // quote (linear however the quotes fall).
  let odd = openQuote;
  let s = stray === null ? -1 : stray.length - 1; // the last stray quote not yet stepped over
  let hi = len; // exclusive bound of what is left to search
  let q = hi > 0 ? buf.lastIndexOf(QUOTE, hi - 1) : -1;
  let lf = hi > 0 ? buf.lastIndexOf(LF, hi - 1) : -1;
  while (lf !== -1) {
    if (q > lf) {
      // A quote between the LF and `hi`: step back over it (the LF is still the last one before it).
      if (s >= 0 && stray![s] === q) s--;
      else odd = !odd;
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
 * The quotes of buf[0, len) (0 a record start), as the parser reads them.
 * Quotes are rare in most files and found one native `indexOf` at a time
 * (a quote that would open a field has the byte before it checked); where
 * they come densely (some sources quote every field: one call every few
 * bytes costs more than reading the bytes), the rest is read a word at a
 * time (`scanQuoteWords`).
 */
export function scanQuotes(buf: Buffer, len: number): QuoteScan {
  const scan: QuoteScan = { open: false, stray: null };
  let odd = false;
  let closedAt = -2; // offset of the last quote that closed a field
  let n = 0;
  let mark = 0;
  for (let q = buf.indexOf(QUOTE, 0); q !== -1 && q < len; q = buf.indexOf(QUOTE, q + 1)) {
    if (odd) {
      odd = false;
      closedAt = q;
    } else if (q === 0 || buf[q - 1] === COMMA || buf[q - 1] === LF || closedAt === q - 1) odd = true;
    else (scan.stray ??= []).push(q);
    if (++n < DENSE_CHECK) continue;
    if (q - mark < DENSE_CHECK * DENSE_GAP) {
      // The state after the quote at q: a field open, or (when it closed one) a quote at q + 1 may open one.
      scan.open = odd;
      return scanQuoteWords(buf, q + 1, len, closedAt === q, scan);
    }
    n = 0;
    mark = q;
  }
  scan.open = odd;
  return scan;
}

const LOW7 = 0x7f7f7f7f;
/** Words read before checking for a stray quote (a block that holds one is read again a byte at a time). */
const BLOCK_WORDS = 256;

/**
 * Continues `scan` over buf[from, to), four bytes at a time. `scan.open`:
 * a quoted field is open at `from`; `canOpen`: a quote at `from` would open
 * one (the byte before is a comma, a LF or a closing quote).
 *
 * In each word the quote bytes get their high bit set (the exact zero-byte
 * test on word ^ 0x22222222), and a prefix XOR of those bits gives each
 * byte the parity after it: the quotes that open a field are those with odd
 * parity after them, and the byte before each must be a comma, a LF or a
 * quote (which, with even parity after it, closed a field), tested the same
 * way. These hold for every quote until the first stray one, so a block of
 * words where one fails holds a stray quote and is read again a byte at a
 * time (`scanBytes`).
 */
function scanQuoteWords(buf: Uint8Array, from: number, to: number, canOpen: boolean, scan: QuoteScan): QuoteScan {
  let i = from;
  // Bytes up to a 4-byte-aligned address, so the words can be read through an Int32Array.
  let head = i;
  while (head < to && (buf.byteOffset + head) % 4 !== 0) head++;
  let ok = scanBytes(buf, i, head, canOpen, scan);
  i = head;
  const words = (to - i) >>> 2;
  if (words > 0) {
    const w = new Int32Array(buf.buffer, buf.byteOffset + i, words);
    for (let k0 = 0; k0 < words; k0 += BLOCK_WORDS) {
      const k1 = Math.min(words, k0 + BLOCK_WORDS);
      carry[0] = scan.open ? 0x80808080 | 0 : 0;
      carry[1] = ok ? 0 : 0x80;
      if (wordBlock(w, k0, k1, carry) === 0) {
        scan.open = carry[0] !== 0;
        ok = carry[1] === 0;
      } else ok = scanBytes(buf, i + 4 * k0, i + 4 * k1, ok, scan);
    }
    i += 4 * words;
  }
  scanBytes(buf, i, to, ok, scan);
  return scan;
}

/** The state between words: the parity after the last word's bytes (0 or 0x80808080), and 0x80 when a quote may not open a field after its last byte. */
const carry = new Int32Array(2);

/**
 * Reads w[k0, k1) from the state in `carry`, leaving the state after them
 * there. Returns non-zero when a quote that would open a field follows a
 * byte after which none may open: a stray quote (the state is then wrong).
 */
function wordBlock(w: Int32Array, k0: number, k1: number, carry: Int32Array): number {
  let oddBits = carry[0];
  let notOkBit = carry[1];
  let bad = 0;
  // Only bit 7 of each byte is meant below (the low bits are left as they fall: fewer operations).
  for (let k = k0; k < k1; k++) {
    const x = w[k];
    const xq = x ^ 0x22222222;
    const mq = ~(((xq & LOW7) + LOW7) | xq); // the quotes
    // Parity after each byte, little-endian: byte 0 is the low one.
    let after = mq ^ (mq << 8);
    after ^= (after << 16) ^ oddBits;
    const xc = x ^ 0x2c2c2c2c;
    const xl = x ^ 0x0a0a0a0a;
    // Neither a comma, a LF nor a quote: a quote may not open a field after it.
    const notOk = ((((xc & LOW7) + LOW7) | xc) & (((xl & LOW7) + LOW7) | xl)) ^ mq;
    bad |= mq & after & ((notOk << 8) | notOkBit);
    oddBits = (after >> 31) & (0x80808080 | 0);
    notOkBit = (notOk >>> 24) & 0x80;
  }
  carry[0] = oddBits;
  carry[1] = notOkBit;
  return bad & (0x80808080 | 0);
}

/** Continues `scan` over buf[from, to) a byte at a time (see `scanQuoteWords`); returns whether a quote at `to` may open a field. */
function scanBytes(buf: Uint8Array, from: number, to: number, canOpen: boolean, scan: QuoteScan): boolean {
  let odd = scan.open;
  let ok = canOpen;
  for (let i = from; i < to; i++) {
    const c = buf[i];
    if (c === QUOTE) {
      if (odd) ok = !(odd = false);
      else if (ok) ok = !(odd = true);
      else (scan.stray ??= []).push(i);
    } else ok = c === COMMA || c === LF;
  }
  scan.open = odd;
  return ok;
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


/**
 * `planCuts` for a buffer that must also be cut at `ends` (ascending offsets in (0, len]): each piece up to
 * one of them is planned as if the file ended there. A split file from `partition` has such ends after the
 * records the input's reading gave up on (src/sinks/linemap.ts), so it is cut as the input was.
 */
export function planCutsAt(buf: Buffer, len: number, atEof: boolean, maxRecordBytes: number, ends: readonly number[]): { cuts: number[]; consumed: number } {
  const cuts: number[] = [];
  let base = 0;
  for (const end of ends) {
    for (const c of planCuts(buf.subarray(base), end - base, true, maxRecordBytes).cuts) cuts.push(base + c);
    base = end;
  }
  const rest = planCuts(buf.subarray(base), len - base, atEof, maxRecordBytes);
  for (const c of rest.cuts) cuts.push(base + c);
  return { cuts, consumed: base + rest.consumed };
}
