/**
 * A byte-level RFC 4180 record parser over a Buffer region. Pure: no I/O.
 *
 * It hands each record to a callback as decoded field strings, with the byte
 * offset where the record starts, its line (0-based count of LFs before it in
 * the region) and its problems, if the record could not be split cleanly. It
 * is lenient where recovery is safe (CRLF or LF, a trailing record without a
 * newline) and reports, never throws, on malformed input: a quote inside an
 * unquoted field or text after a closing quote is `bad_quote`; a quote still
 * open at the end of the region is `unterminated_quote`; bytes that are not
 * UTF-8 are `invalid_utf8`. A record can have several: `problem` is a set.
 */
import { isAscii, isUtf8 } from 'node:buffer';

/** A record's problems, as bit flags (a set: a record may have several; 0 is none). */
export const enum Problem {
  None = 0,
  BadQuote = 1,
  UnterminatedQuote = 2,
  InvalidUtf8 = 4,
}

const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

export interface RecordInfo {
  /** Decoded fields (not trimmed). */
  fields: string[];
  /** Byte offset of the record's first byte in the buffer. */
  start: number;
  /** Byte offset just past the record (after its LF, if any). */
  end: number;
  /** 0-based line of the record's first byte, relative to the region start. */
  line: number;
  problem: Problem;
}

export type Encoding = 'latin1' | 'utf8';

/** Chooses the cheapest correct decoder for a region: ASCII decodes as latin1. */
export function regionEncoding(buf: Buffer, start: number, end: number): Encoding | 'mixed' {
  const view = buf.subarray(start, end);
  if (isAscii(view)) return 'latin1';
  return isUtf8(view) ? 'utf8' : 'mixed';
}

/**
 * Parses every record in buf[start, end), with byte offsets. Blank lines
 * (nothing, or only CR) are skipped and counted. Returns the number of LFs in
 * the region and of blank lines skipped.
 *
 * The region is decoded as Latin-1 (one char per byte, so offsets are byte
 * offsets) and parsed by `parseText`; outside pure ASCII, each record's bytes
 * are checked and its fields re-decoded as UTF-8, or `InvalidUtf8` is added
 * to the record's problems (its fields keep every byte, as Latin-1).
 */
export function parseRecords(
  buf: Buffer,
  start: number,
  end: number,
  onRecord: (r: RecordInfo) => void,
): { lines: number; blankLines: number } {
  const ascii = regionEncoding(buf, start, end) === 'latin1';
  const rec: RecordInfo = { fields: [], start: 0, end: 0, line: 0, problem: Problem.None };
  return parseText(buf.toString('latin1', start, end), (r) => {
    rec.start = start + r.start;
    rec.end = start + r.end;
    rec.line = r.line;
    rec.problem = r.problem;
    rec.fields = r.fields.slice();
    if (!ascii) {
      if (isUtf8(buf.subarray(rec.start, rec.end))) {
        for (let i = 0; i < rec.fields.length; i++) rec.fields[i] = Buffer.from(rec.fields[i], 'latin1').toString('utf8');
      } else rec.problem |= Problem.InvalidUtf8;
    }
    onRecord(rec);
  });
}

/** Counts LF bytes in buf[from, to). */
export function countLF(buf: Buffer, from: number, to: number): number {
  let n = 0;
  let i = buf.indexOf(LF, from);
  while (i !== -1 && i < to) {
    n++;
    i = buf.indexOf(LF, i + 1);
  }
  return n;
}

/** Encodes one field for CSV output: quoted only when it must be. */
export function csvField(s: string): string {
  if (s === '') return '';
  if (/[",\r\n]/.test(s) || s.trim() !== s) return `"${s.replace(/"/g, '""')}"`;
  return s;
}

/** A record found by `parseText`; `fields` is reused between records (copy what you keep). */
export interface TextRecord {
  fields: string[];
  /** Offsets of the record in the text. */
  start: number;
  end: number;
  line: number;
  problem: Problem;
}

/**
 * The same grammar as `parseRecords`, over an already decoded string: the
 * hot path for chunks that are valid UTF-8 (one native decode per chunk
 * instead of one per field). Offsets are string
 * offsets. Unquoted fields are plain `slice`s.
 */
export function parseText(text: string, onRecord: (r: TextRecord) => void): { lines: number; blankLines: number } {
  const end = text.length;
  let pos = 0;
  let line = 0;
  let blankLines = 0;
  const fields: string[] = [];
  const rec: TextRecord = { fields, start: 0, end: 0, line: 0, problem: Problem.None };
  // Fast path: a line with no quote in it is split with indexOf; the next
  // quote's position is tracked so the check costs nothing per line.
  let nextQuote = text.indexOf('"');
  if (nextQuote === -1) nextQuote = end;
  while (pos < end) {
    if (nextQuote < pos) {
      nextQuote = text.indexOf('"', pos);
      if (nextQuote === -1) nextQuote = end;
    }
    let lineEnd = text.indexOf('\n', pos);
    if (lineEnd === -1) lineEnd = end;
    if (nextQuote > lineEnd && lineEnd > pos) {
      let stop = lineEnd;
      if (text.charCodeAt(stop - 1) === CR) stop--;
      if (stop > pos) {
        let nf = 0;
        let p = pos;
        for (;;) {
          const comma = text.indexOf(',', p);
          if (comma === -1 || comma >= stop) {
            fields[nf++] = text.slice(p, stop);
            break;
          }
          fields[nf++] = text.slice(p, comma);
          p = comma + 1;
        }
        fields.length = nf;
        rec.start = pos;
        rec.end = lineEnd < end ? lineEnd + 1 : end;
        rec.line = line;
        rec.problem = Problem.None;
        pos = rec.end;
        if (lineEnd < end) line++;
        onRecord(rec);
        continue;
      }
    }
    let c = text.charCodeAt(pos);
    if (c === LF || (c === CR && (pos + 1 === end || text.charCodeAt(pos + 1) === LF))) {
      const lf = c === LF || pos + 1 < end;
      pos += c === LF ? 1 : Math.min(2, end - pos);
      if (lf) line++;
      blankLines++;
      continue;
    }
    const recStart = pos;
    const recLine = line;
    let problem: Problem = Problem.None;
    let nf = 0;
    for (;;) {
      if (pos < end && text.charCodeAt(pos) === QUOTE) {
        pos++;
        let value = '';
        let closed = false;
        for (;;) {
          const q = text.indexOf('"', pos);
          if (q === -1) {
            value += text.slice(pos);
            line += countChar(text, LF, pos, end);
            pos = end;
            break;
          }
          line += countChar(text, LF, pos, q);
          value += text.slice(pos, q);
          if (q + 1 < end && text.charCodeAt(q + 1) === QUOTE) {
            value += '"';
            pos = q + 2;
            continue;
          }
          pos = q + 1;
          closed = true;
          break;
        }
        if (!closed) {
          problem |= Problem.UnterminatedQuote;
          fields[nf++] = value;
          break;
        }
        let after = pos;
        while (after < end) {
          c = text.charCodeAt(after);
          if (c === COMMA || c === LF) break;
          after++;
        }
        const tail = after > pos && text.charCodeAt(after - 1) === CR && (after === end || text.charCodeAt(after) === LF) ? after - 1 : after;
        if (tail > pos) {
          problem |= Problem.BadQuote;
          value += text.slice(pos, tail);
        }
        fields[nf++] = value;
        pos = after;
      } else {
        let i = pos;
        let sawQuote = false;
        for (; i < end; i++) {
          c = text.charCodeAt(i);
          if (c === COMMA || c === LF) break;
          if (c === QUOTE) sawQuote = true;
        }
        const stop = i > pos && text.charCodeAt(i - 1) === CR && (i === end || text.charCodeAt(i) === LF) ? i - 1 : i;
        fields[nf++] = text.slice(pos, stop);
        if (sawQuote) problem |= Problem.BadQuote;
        pos = i;
      }
      if (pos >= end) break;
      if (text.charCodeAt(pos) === COMMA) {
        pos++;
        if (pos >= end) {
          fields[nf++] = '';
          break;
        }
        continue;
      }
      pos++; // LF
      line++;
      break;
    }
    fields.length = nf;
    rec.start = recStart;
    rec.end = pos;
    rec.line = recLine;
    rec.problem = problem;
    onRecord(rec);
  }
  return { lines: line, blankLines };
}

function countChar(text: string, code: number, from: number, to: number): number {
  let n = 0;
  const ch = String.fromCharCode(code);
  for (let i = text.indexOf(ch, from); i !== -1 && i < to; i = text.indexOf(ch, i + 1)) n++;
  return n;
}

/**
 * Where `parseText` ends the record that starts at `pos` (not a blank line),
 * scanning bytes: the offset just past its LF, or `end`. It follows the
 * parser's grammar, as the cutter does: a quote opens a quoted field only at
 * a field's start. The workers' fast path uses it to hand one record to the
 * parser, and the header reader to find where the header ends.
 */
export function parsedRecordEnd(b: Uint8Array, pos: number, end: number): number {
  let i = pos;
  for (;;) {
    if (i < end && b[i] === QUOTE) {
      i++;
      for (;;) {
        while (i < end && b[i] !== QUOTE) i++;
        if (i >= end) return end; // unterminated: the record runs to the end
        if (i + 1 < end && b[i + 1] === QUOTE) {
          i += 2;
          continue;
        }
        i++;
        break;
      }
    }
    while (i < end && b[i] !== COMMA && b[i] !== LF) i++;
    if (i >= end) return end;
    if (b[i] === LF) return i + 1;
    i++; // comma
    if (i >= end) return end;
  }
}
