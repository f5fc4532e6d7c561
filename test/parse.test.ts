/**
 * src/parse: the byte-level record parser against fast-csv (an independent
 * RFC 4180 parser), its problem reports, the cutter (record boundaries in a
 * stream, simulated at every byte offset the way the coordinator reads),
 * and the header parser.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import * as csv from '../src/parse/csv.js';
import { countLF, csvField, parseRecords, Problem, regionEncoding } from '../src/parse/csv.js';
import { firstLineEnd, lastRecordCut, planCuts, planCutsAt, scanQuotes } from '../src/parse/cutter.js';
import { extrasWarning, parseHeader, shownNames } from '../src/parse/header.js';
import { curatedScan, describeRun, expectErrorCodeSync, fastCsv, query, readQuarantine, removeTempDirs, runCli, tempDir } from './helpers.js';

afterAll(removeTempDirs);

interface Rec {
  fields: string[];
  start: number;
  end: number;
  line: number;
  problem: number;
}

/** Every record of buf[start, end) as plain data (the parser reuses its record object). */
function parseAll(buf: Buffer, start = 0, end = buf.length): { recs: Rec[]; lines: number; blankLines: number } {
  const recs: Rec[] = [];
  const { lines, blankLines } = parseRecords(buf, start, end, (r) => recs.push({ fields: r.fields.slice(), start: r.start, end: r.end, line: r.line, problem: r.problem }));
  return { recs, lines, blankLines };
}

const fieldsOf = (text: string) => parseAll(Buffer.from(text, 'utf8')).recs.map((r) => r.fields);

// ------------------------------------------------------------------ parser vs fast-csv

const ADVERSARIAL: [string, string][] = [
  ['plain', 'a,b,c\n1,2,3\n'],
  ['quoted fields', '"a","b","c"\n'],
  ['doubled quotes', '"he said ""hi""",x\n"""",""""""\n'],
  ['embedded commas', '"a,b",c,",,,"\n'],
  ['embedded LF', '"line1\nline2",x\n'],
  ['embedded CRLF', '"l1\r\nl2",x\r\ny,z\r\n'],
  ['CRLF line ends', 'a,b\r\nc,d\r\n'],
  ['mixed LF and CRLF', 'a,b\nc,d\r\ne,f\n'],
  ['empty fields', ',,\n,a,\na,,\n'],
  ['empty quoted fields', '"",""\n"",x\n'],
  ['no trailing newline', 'a,b\nc,d'],
  ['no trailing newline, quoted last field', 'a,"b"'],
  ['trailing comma at end of file', 'a,'],
  ['UTF-8 multibyte', 'é,ü,"日本,語"\n😀,x\n'],
  ['multibyte inside quotes with newline', '"é\nü",°C\n'],
  ['spaces kept', ' a , b \n'],
  ['single column', 'a\nb\n"c"\n'],
  ['quoted field then CRLF at EOF', '"a"\r\n'],
  ['long record', `${'x'.repeat(5000)},"${'y,'.repeat(2000)}"\n`],
];

describe('parseRecords against fast-csv', () => {
  it.each(ADVERSARIAL)('%s', async (_name, text) => {
    const ours = parseAll(Buffer.from(text, 'utf8'));
    expect(ours.recs.every((r) => r.problem === Problem.None)).toBe(true);
    expect(ours.recs.map((r) => r.fields)).toEqual(await fastCsv(text));
  });

  it('skips and counts blank lines (LF, CRLF, trailing CR)', () => {
    const { recs, blankLines, lines } = parseAll(Buffer.from('a,b\n\nc,d\r\n\r\ne,f\n', 'utf8'));
    expect(recs.map((r) => r.fields)).toEqual([['a', 'b'], ['c', 'd'], ['e', 'f']]);
    expect(blankLines).toBe(2);
    expect(lines).toBe(5);
    // A lone CR at the end of the region is a blank line too (only possible at EOF: the cutter cuts after LFs).
    const tail = parseAll(Buffer.from('a,b\n\r', 'utf8'));
    expect(tail.recs.map((r) => r.fields)).toEqual([['a', 'b']]);
    expect(tail.blankLines).toBe(1);
  });

  it('reports start, end and 0-based line of each record', () => {
    const text = 'a,b\n"x\ny",z\r\n\nlast';
    const buf = Buffer.from(text);
    const { recs, lines } = parseAll(buf);
    expect(recs.map((r) => [r.start, r.end, r.line])).toEqual([
      [0, 4, 0],
      [4, 13, 1],
      [14, 18, 4],
    ]);
    expect(lines).toBe(4);
  });

  it('parses a sub-region only', () => {
    const buf = Buffer.from('skip,me\na,b\nc,d\nskip');
    const { recs } = parseAll(buf, 8, 16);
    expect(recs.map((r) => [r.fields, r.start])).toEqual([
      [['a', 'b'], 8],
      [['c', 'd'], 12],
    ]);
  });

  it('picks the decoder per region', () => {
    const b = Buffer.from('abc,é');
    expect(regionEncoding(b, 0, 3)).toBe('latin1');
    expect(regionEncoding(b, 0, b.length)).toBe('utf8');
    expect(regionEncoding(Buffer.from([0x61, 0xff]), 0, 2)).toBe('mixed');
  });

  it('countLF counts LFs in a range', () => {
    const b = Buffer.from('\na\nb\n\n');
    expect(countLF(b, 0, b.length)).toBe(4);
    expect(countLF(b, 1, 3)).toBe(1);
    expect(countLF(b, 2, 2)).toBe(0);
  });
});

// ------------------------------------------------------------------ property: serialise → parse

const CHARS = ['a', 'b', 'Z', '0', ' ', ',', '"', '\n', '\r\n', 'é', '日', '😀', ';', '\t'];
const fieldArb = fc.array(fc.constantFrom(...CHARS), { maxLength: 8 }).map((a) => a.join(''));
const recordArb = fc.array(fieldArb, { minLength: 1, maxLength: 6 });

/**
 * RFC 4180 serialisation: quote when needed (or when asked); a record of one
 * empty field is `""` so it is not a blank line. `forFastCsv` also quotes a
 * whitespace-only first field: fast-csv turns an unquoted one into '' (its
 * quirk, not an RFC 4180 rule).
 */
function serialise(records: string[][], quoteAll: boolean[], crlf: boolean[], trailing: boolean, forFastCsv = false): string {
  return records
    .map((r, i) => {
      const line = r
        .map((f, j) =>
          quoteAll[i % quoteAll.length] || /[",\r\n]/.test(f) || (r.length === 1 && f === '') || (forFastCsv && j === 0 && f !== '' && f.trim() === '')
            ? `"${f.replace(/"/g, '""')}"`
            : f,
        )
        .join(',');
      const eol = crlf[i % crlf.length] ? '\r\n' : '\n';
      return i < records.length - 1 || trailing ? line + eol : line;
    })
    .join('');
}

describe('parseRecords property', () => {
  it('gives back the fields of any RFC 4180 serialised records, as fast-csv does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordArb, { minLength: 1, maxLength: 15 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (records, quoteAll, crlf, trailing) => {
          const text = serialise(records, quoteAll, crlf, trailing);
          const buf = Buffer.from(text, 'utf8');
          const { recs } = parseAll(buf);
          expect(recs.map((r) => r.fields)).toEqual(records);
          expect(recs.every((r) => r.problem === Problem.None)).toBe(true);
          // Offsets and lines are consistent: each record re-parses alone, and its line counts the LFs before it.
          for (const r of recs) {
            expect(parseAll(buf, r.start, r.end).recs.map((x) => x.fields)).toEqual([r.fields]);
            expect(r.line).toBe(countLF(buf, 0, r.start));
          }
          expect(await fastCsv(serialise(records, quoteAll, crlf, trailing, true))).toEqual(records);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('csvField (the quarantine writer) round-trips through fast-csv and parseRecords', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fieldArb, { minLength: 2, maxLength: 5 }), async (fields) => {
        const line = fields.map(csvField).join(',') + '\n';
        expect(fieldsOf(line)).toEqual([fields]);
        expect(await fastCsv(line)).toEqual([fields]);
      }),
      { numRuns: 200 },
    );
  });
});

// A string-level twin of parseRecords (the UTF-8 hot path), when the module has one.
const parseText = (csv as unknown as { parseText?: (t: string, cb: (r: Rec) => void) => { lines: number; blankLines: number } }).parseText;

describe.skipIf(!parseText)('parseText agrees with parseRecords on decoded text', () => {
  const viaText = (text: string) => {
    const recs: Omit<Rec, 'start' | 'end'>[] = [];
    const totals = parseText!(text, (r) => recs.push({ fields: r.fields.slice(), line: r.line, problem: r.problem }));
    return { recs, ...totals };
  };
  const viaBytes = (text: string) => {
    const { recs, lines, blankLines } = parseAll(Buffer.from(text, 'utf8'));
    return { recs: recs.map(({ fields, line, problem }) => ({ fields, line, problem })), lines, blankLines };
  };

  it.each(ADVERSARIAL)('%s', (_name, text) => {
    expect(viaText(text)).toEqual(viaBytes(text));
  });

  it.each(['a"b,c\n', '"a"b,c\n', '"a" ,c\n', 'a,"abc\nmore\n', 'a,b\n\n\r\nc\n\r', '"x"\r\n,\n'])('problem case %j', (text) => {
    expect(viaText(text)).toEqual(viaBytes(text));
  });

  it('property: same records, lines and problems for any text over the CSV alphabet', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...CHARS, '\r', '""'), { maxLength: 60 }), (parts) => {
        const text = parts.join('');
        expect(viaText(text)).toEqual(viaBytes(text));
      }),
      { numRuns: 500 },
    );
  });
});

// ------------------------------------------------------------------ problems

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

describe('parseRecords problems', () => {
  it.each<[string, Buffer, number[]]>([
    ['unterminated quote at end of region', bytes('a,"abc\nmore,lines\n'), [Problem.UnterminatedQuote]],
    ['quote inside an unquoted field', bytes('a"b,c\n'), [Problem.BadQuote]],
    ['text after a closing quote', bytes('"a"b,c\n'), [Problem.BadQuote]],
    ['space after a closing quote', bytes('"a" ,c\n'), [Problem.BadQuote]],
    ['CR before LF after a closing quote is fine', bytes('"a"\r\nb\n'), [Problem.None, Problem.None]],
    ['invalid byte 0xFF', bytes('a,', [0xff], '\nok,é\n'), [Problem.InvalidUtf8, Problem.None]],
    ['truncated multibyte sequence', bytes('x,', [0xc3], '\né,y\n'), [Problem.InvalidUtf8, Problem.None]],
    ['overlong encoding', bytes('x,', [0xc0, 0xaf], '\n'), [Problem.InvalidUtf8]],
    ['UTF-16 surrogate in UTF-8', bytes('x,', [0xed, 0xa0, 0x80], '\n'), [Problem.InvalidUtf8]],
    ['invalid UTF-8 inside a quoted multi-line field', bytes('"a', [0xfe], '\nb",c\nd,e\n'), [Problem.InvalidUtf8, Problem.None]],
    // A record's problems are a set: none hides another.
    ['an unterminated quote and invalid UTF-8', bytes('a', [0xff], ',"b\nc\n'), [Problem.InvalidUtf8 | Problem.UnterminatedQuote]],
    ['a bad quote and invalid UTF-8', bytes('a"b,', [0xff], '\nok,é\n'), [Problem.InvalidUtf8 | Problem.BadQuote, Problem.None]],
    ['a bad quote, then an unterminated quote', bytes('a"b,"c\nd\n'), [Problem.BadQuote | Problem.UnterminatedQuote]],
    ['all three', bytes('"a"b,', [0xc3], ',"c\n'), [Problem.InvalidUtf8 | Problem.BadQuote | Problem.UnterminatedQuote]],
  ])('%s', (_name, buf, problems) => {
    expect(parseAll(buf).recs.map((r) => r.problem)).toEqual(problems);
  });

  it('an unterminated quote swallows the rest of the region as one record (the cutter limits the region)', () => {
    const { recs } = parseAll(bytes('1,ok\n2,"broken\n3,after\n'));
    expect(recs).toHaveLength(2);
    expect(recs[1].problem).toBe(Problem.UnterminatedQuote);
    expect(recs[1].fields).toEqual(['2', 'broken\n3,after\n']);
  });

  it('a record with invalid UTF-8 keeps the other records of the region decoded as UTF-8', () => {
    const { recs } = parseAll(bytes('é,1\n', [0x80], ',2\nü,3\n'));
    expect(recs.map((r) => [r.fields[0], r.problem])).toEqual([
      ['é', Problem.None],
      ['\u0080', Problem.InvalidUtf8],
      ['ü', Problem.None],
    ]);
  });

  it('never throws on arbitrary bytes and accounts for every LF', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (u8) => {
        const buf = Buffer.from(u8);
        const { recs, lines, blankLines } = parseAll(buf);
        expect(lines).toBe(countLF(buf, 0, buf.length));
        // Records tile the region apart from blank lines.
        let covered = 0;
        for (const r of recs) covered += r.end - r.start;
        expect(covered).toBeLessThanOrEqual(buf.length);
        expect(recs.length + blankLines).toBeLessThanOrEqual(lines + 1);
      }),
      { numRuns: 300 },
    );
  });
});

// ------------------------------------------------------------------ cutter

/**
 * The parser's grammar for record ends, a byte at a time (written out here,
 * independently of src/parse): a quote opens a quoted field only at a
 * field's start; inside one, `""` is a quote and another quote closes it;
 * a LF ends the record unless a quoted field is open. Returns the offset
 * after the last record-ending LF in b[0, len), whether a quoted field is
 * open at len, and the quotes that open nothing (inside an unquoted field).
 */
function grammarWalk(b: Uint8Array, len: number): { cut: number; open: boolean; stray: number[] } {
  type State = 'fieldStart' | 'unquoted' | 'quoted' | 'quoteInQuoted';
  let state: State = 'fieldStart';
  let cut = 0;
  const stray: number[] = [];
  for (let i = 0; i < len; i++) {
    const c = String.fromCharCode(b[i]);
    if (state === 'quoted') {
      if (c === '"') state = 'quoteInQuoted';
    } else if (c === '\n') {
      cut = i + 1;
      state = 'fieldStart';
    } else if (c === ',') state = 'fieldStart';
    else if (c === '"') {
      if (state === 'unquoted') stray.push(i);
      else state = 'quoted'; // a field's opening quote, or the second of a doubled one
    } else state = 'unquoted';
  }
  return { cut, open: state === 'quoted', stray };
}

describe('lastRecordCut / firstLineEnd', () => {
  it.each<[string, string, number, boolean]>([
    ['no LF', 'abc', 0, false],
    ['after the last LF', 'a,b\nc,d\ne', 8, false],
    ['LF at the end', 'a,b\n', 4, false],
    ['LF inside quotes is not a cut', 'a\n"b\nc', 2, true],
    ['closed quotes with LF inside', 'a\n"b\nc",d\ne', 10, false],
    ['open quote from the start', '"a\nb\nc', 0, true],
    ['doubled quotes keep parity', 'a,"x""y"\nb,"""\nc', 9, true],
    ['stray quotes: a quote inside an unquoted field opens nothing', 'a,7"2\nb\n', 8, false],
    ['stray quotes: ...so a later quoted field with a LF is not cut', 'a,7"2\nb,"x\ny"\nc', 14, false],
    ['stray quotes: text after a closing quote, then a quote: stray', 'a,"x"y"\nb\n', 10, false],
    ['stray quotes: a quote after a stray quote is stray too', 'a""\nb\n', 6, false],
    ['stray quotes: a quote after CR at a record start is stray', '\r"a\nb', 4, false],
    ['stray quotes: a doubled quote after a closing one stays in the field', '"a""\n""b"\nc', 10, false],
  ])('%s', (_name, text, cut, open) => {
    const b = Buffer.from(text);
    expect(lastRecordCut(b, b.length)).toEqual({ cut, openQuote: open });
  });

  it('honours len (bytes past it are not seen)', () => {
    const b = Buffer.from('a\nb\n"c\nd"\n');
    expect(lastRecordCut(b, 5)).toEqual({ cut: 4, openQuote: true });
    expect(lastRecordCut(b, 3)).toEqual({ cut: 2, openQuote: false });
  });

  it('agrees with a byte-by-byte walk of the parser\'s grammar, on any bytes of quotes, LFs and text', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('"', '\n', 'a', ',', '\r'), { maxLength: 60 }), fc.nat(), (chars, k) => {
        const b = Buffer.from(chars.join(''));
        const len = b.length === 0 ? 0 : k % (b.length + 1);
        const { cut, open } = grammarWalk(b, len);
        expect(lastRecordCut(b, len)).toEqual({ cut, openQuote: open });
      }),
      { numRuns: 2000 },
    );
  });

  it('reads quotes as the grammar walk does, for sparse and dense quotes (one indexOf a quote, then four bytes at a time), stray ones included, at any alignment', () => {
    // Bytes from pieces of quoted CSV (openers after commas and LFs, closers before them, doubled quotes) and anything
    // else (stray quotes, 0x22's neighbours, high bytes), so the dense path meets words with and without stray quotes.
    const PIECES = [',"', '",', '\n"', '"\n', '"\r\n', '""', '"', ',', '\n', 'a', 'ab', '!', '#', '\u00a2', '\u0000'];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 8_000 }),
        fc.integer({ min: 0, max: 7 }),
        fc.nat(),
        fc.nat(),
        (percent, size, offset, seed, k) => {
          let x = seed | 1;
          const rnd = () => ((x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) ^ (x + 0x6d2b79f5)) >>> 0) / 2 ** 32;
          let text = '';
          while (text.length < size) text += rnd() * 100 < percent ? PIECES[Math.floor(rnd() * 6)] : PIECES[6 + Math.floor(rnd() * (PIECES.length - 6))];
          const bytes = Buffer.from(text, 'latin1');
          const whole = Buffer.alloc(bytes.length + offset);
          bytes.copy(whole, offset);
          const b = whole.subarray(offset);
          const len = b.length === 0 ? 0 : k % (b.length + 1);
          const { open, stray } = grammarWalk(b, len);
          expect(scanQuotes(b, len)).toEqual({ open, stray: stray.length === 0 ? null : stray });
        },
      ),
      { numRuns: 400 },
    );
  });

  it('stays linear when a long line after the last LF is full of quotes (the walk back steps over each)', () => {
    // A million quotes after the only LF (a 2 MB chunk), then an open quote: every quote is stepped over on the way back.
    // A walk that searched for the LF again at each quote scans ~10^12 bytes here (minutes; this walk: milliseconds).
    const b = Buffer.from('a\n' + '"x",'.repeat(500_000) + '"y');
    expect(lastRecordCut(b, b.length)).toEqual({ cut: 2, openQuote: true });
  }, 5_000); // a complexity guard, not a benchmark: ~20 s quadratic, ~0.1 s linear

  it('firstLineEnd', () => {
    expect(firstLineEnd(Buffer.from('ab\ncd\n'), 6)).toBe(3);
    expect(firstLineEnd(Buffer.from('abcd'), 4)).toBe(4);
    expect(firstLineEnd(Buffer.from('ab\ncd\n'), 2)).toBe(2);
  });
});

interface AbsRec {
  fields: string[];
  start: number;
  line: number;
  problem: number;
}

/**
 * The coordinator's read loop over `file`, with reads ending at `splits`
 * (increasing, each < file.length) and a last read to EOF: plan cuts, parse
 * each piece, and report records with absolute offsets and lines.
 */
function simulate(file: Buffer, splits: number[], maxRecordBytes = 1 << 20): AbsRec[] {
  const out: AbsRec[] = [];
  let pending = Buffer.alloc(0);
  let pendingOffset = 0;
  let lineBase = 0;
  const ends = [...splits, file.length];
  let pos = 0;
  for (const end of ends) {
    const buf = Buffer.concat([pending, file.subarray(pos, end)]);
    pos = end;
    const atEof = pos >= file.length;
    const { cuts, consumed } = planCuts(buf, buf.length, atEof, maxRecordBytes);
    expect(consumed).toBe(cuts.length ? cuts[cuts.length - 1] : 0);
    let from = 0;
    for (const cut of cuts) {
      expect(cut).toBeGreaterThan(from);
      const piece = Buffer.from(buf.subarray(from, cut));
      const { recs, lines } = parseAll(piece);
      for (const r of recs) out.push({ fields: r.fields, start: pendingOffset + from + r.start, line: lineBase + r.line, problem: r.problem });
      lineBase += lines;
      from = cut;
    }
    pending = Buffer.from(buf.subarray(consumed));
    pendingOffset += consumed;
    if (atEof) {
      expect(pending.length).toBe(0);
      break;
    }
  }
  return out;
}

const wholeFile = (file: Buffer): AbsRec[] => parseAll(file).recs.map((r) => ({ fields: r.fields, start: r.start, line: r.line, problem: r.problem }));

// Quotes, doubled quotes, embedded commas and newlines (LF and CRLF), CRLF ends, empty fields, multibyte, blank line, no final LF.
const GOOD = Buffer.from(
  'hospital_id,value,note\r\n' +
    'H1,"7,2","a ""q"" b"\n' +
    'H2,,"multi\nline\r\nfield"\r\n' +
    '"H3","",é日😀\n' +
    '\n' +
    'H4,"""",x\n' +
    'H5,1,"ends\n"',
  'utf8',
);

describe('planCuts: the coordinator read loop at every split', () => {
  const reference = wholeFile(GOOD);

  it('the reference parse is clean', () => {
    expect(reference.map((r) => r.fields[0])).toEqual(['hospital_id', 'H1', 'H2', 'H3', 'H4', 'H5']);
    expect(reference.every((r) => r.problem === Problem.None)).toBe(true);
  });

  it('one split at every byte offset gives exactly the whole-file records', () => {
    for (let k = 1; k <= GOOD.length; k++) expect(simulate(GOOD, k < GOOD.length ? [k] : []), `split at ${k}`).toEqual(reference);
  });

  it('two splits at every pair of offsets give exactly the whole-file records', () => {
    for (let i = 1; i < GOOD.length; i++) {
      for (let j = i + 1; j < GOOD.length; j++) expect(simulate(GOOD, [i, j]), `splits at ${i}, ${j}`).toEqual(reference);
    }
  });

  it('tiny reads (1..7 bytes at a time) give the whole-file records', () => {
    for (let step = 1; step <= 7; step++) {
      const splits: number[] = [];
      for (let k = step; k < GOOD.length; k += step) splits.push(k);
      expect(simulate(GOOD, splits), `step ${step}`).toEqual(reference);
    }
  });

  it('property: random files and random splits give the whole-file records', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 10 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 4 }), (records, crlf, rawSplits) => {
        const file = Buffer.from(serialise(records, [false], crlf, true), 'utf8');
        const splits = [...new Set(rawSplits.map((s) => 1 + (s % Math.max(1, file.length - 1))))].filter((s) => s < file.length).sort((a, b) => a - b);
        expect(simulate(file, splits)).toEqual(wholeFile(file));
      }),
      { numRuns: 300 },
    );
  });
});

// Line 3 opens a quote that is never closed (no later quote closes it); the later lines must be recovered.
const BROKEN = Buffer.from('id,name\n1,ok\n2,"broken\n3,after\n4,quoted fine\r\n5,last\n', 'utf8');

describe('planCuts: an unterminated quote', () => {
  const reference = simulate(BROKEN, []);

  it('is rejected as one record of one line and the following lines are recovered', () => {
    expect(reference.map((r) => [r.line + 1, r.fields, r.problem])).toEqual([
      [1, ['id', 'name'], Problem.None],
      [2, ['1', 'ok'], Problem.None],
      [3, ['2', 'broken\n'], Problem.UnterminatedQuote],
      [4, ['3', 'after'], Problem.None],
      [5, ['4', 'quoted fine'], Problem.None],
      [6, ['5', 'last'], Problem.None],
    ]);
  });

  it('gives the same records for a split at every byte offset', () => {
    for (let k = 1; k < BROKEN.length; k++) expect(simulate(BROKEN, [k]), `split at ${k}`).toEqual(reference);
  });

  it('gives the same records for every pair of splits', () => {
    for (let i = 1; i < BROKEN.length; i++) for (let j = i + 1; j < BROKEN.length; j++) expect(simulate(BROKEN, [i, j]), `splits at ${i}, ${j}`).toEqual(reference);
  });

  it('an open quote longer than maxRecordBytes is given up on before EOF, and scanning resumes on the next line', () => {
    const lines = ['h,v', '1,"never closed'];
    for (let i = 0; i < 40; i++) lines.push(`${i},row${i}`);
    const file = Buffer.from(lines.join('\n') + '\n');
    const splits: number[] = [];
    for (let k = 16; k < file.length; k += 16) splits.push(k);
    const recs = simulate(file, splits, 64);
    expect(recs[1]).toMatchObject({ line: 1, problem: Problem.UnterminatedQuote });
    expect(recs[1].fields).toEqual(['1', 'never closed\n']);
    expect(recs.slice(2).map((r) => r.fields)).toEqual(lines.slice(2).map((l) => l.split(',')));
    expect(recs.slice(2).every((r) => r.problem === Problem.None)).toBe(true);
  });

  it('at EOF, an open quote on the last line becomes its own record', () => {
    const file = Buffer.from('a,b\nc,"d\n');
    const { cuts, consumed } = planCuts(file, file.length, true, 1 << 20);
    expect(cuts).toEqual([4, 9]);
    expect(consumed).toBe(9);
  });

  it('before EOF, an open quote shorter than maxRecordBytes stays pending', () => {
    const file = Buffer.from('a,b\nc,"d\ne\n');
    expect(planCuts(file, file.length, false, 1 << 20)).toEqual({ cuts: [4], consumed: 4 });
  });

  // A split file (src/sinks/linemap.ts): cut where the input's reading gave up on a record, as if the file ended there.
  it.each([
    ['no end: planCuts', 'a,b\nc,"d\ne\n', false, [], { cuts: [4], consumed: 4 }],
    ['an end after an open quote: its line is a record, the rest planned as usual', 'a,b\nc,"d\ne,f\ng,"h\n', false, [9], { cuts: [4, 9, 13], consumed: 13 }],
    ['two ends: records of one line, not one of three lines', 'c,"d\ne,f\ng,"h\n', true, [5, 14], { cuts: [5, 9, 14], consumed: 14 }],
    ['an end at the buffer end, before EOF', 'a,b\nc,"d\n', false, [9], { cuts: [4, 9], consumed: 9 }],
  ])('planCutsAt: %s', (_, text, atEof, ends, want) => {
    const buf = Buffer.from(text);
    expect(planCutsAt(buf, buf.length, atEof, 1 << 20, ends)).toEqual(want);
  });
});

/** Whether the parser, reading all of `file`, ends with a quoted field open (then the cutter gives up on that record at EOF). */
const openAtEof = (file: Buffer) => grammarWalk(file, file.length).open;

/** The reads of a coordinator with this chunk size: a read ends every `size` bytes. */
const readsOf = (file: Buffer, size: number) => Array.from({ length: Math.ceil(file.length / size) - 1 }, (_, k) => (k + 1) * size);

describe('planCuts: stray quotes (a quote inside an unquoted field opens nothing)', () => {
  const VITALS = 'hospital_id,measurement_date,patient_id,vital_type,value,unit,note\n';
  // A stray quote, then a valid quoted note with a LF: the cutter must not take the note's LF for a record end.
  const STRAY = Buffer.from(VITALS + 'H1,2024-01-05,P1,heart_rate,7"2,bpm,x\nH1,2024-01-05,P3,heart_rate,72,bpm,"a\nb"\nH1,2024-01-05,P4,heart_rate,72,bpm,ok\n');
  // A quote that looks unterminated is closed by the next quote the parser meets (the note's opening one); what
  // follows that quote on its line is text after a closing quote, and the note's closing quote is stray: the
  // next quoted note with a LF must not be cut.
  const CLOSED_LATER = Buffer.from(
    VITALS +
      'H1,2024-01-05,P1,heart_rate,72,bpm,"oops\nH1,2024-01-05,P2,heart_rate,72,bpm,ok\nH1,2024-01-05,P3,heart_rate,72,bpm,"a\nb"\n' +
      'H1,2024-01-05,P4,heart_rate,72,bpm,ok\nH1,2024-01-05,P5,heart_rate,72,bpm,"x\ny"\n',
  );
  const row = (p: string, value: string, note: string) => ['H1', '2024-01-05', p, 'heart_rate', value, 'bpm', note];

  it.each<[string, Buffer, [number, string[], Problem][]]>([
    [
      'a stray quote before a quoted LF',
      STRAY,
      [
        [2, row('P1', '7"2', 'x'), Problem.BadQuote],
        [3, row('P3', '72', 'a\nb'), Problem.None],
        [5, row('P4', '72', 'ok'), Problem.None],
      ],
    ],
    [
      'an open quote closed by a later quoted field',
      CLOSED_LATER,
      [
        [2, row('P1', '72', 'oops\nH1,2024-01-05,P2,heart_rate,72,bpm,ok\nH1,2024-01-05,P3,heart_rate,72,bpm,a'), Problem.BadQuote],
        [5, ['b"'], Problem.BadQuote],
        [6, row('P4', '72', 'ok'), Problem.None],
        [7, row('P5', '72', 'x\ny'), Problem.None],
      ],
    ],
  ])('%s: the whole-file records at every split and every pair of splits', (_name, file, rows) => {
    const reference = wholeFile(file);
    expect(reference.slice(1).map((r) => [r.line + 1, r.fields, r.problem])).toEqual(rows);
    expect(simulate(file, []), 'one read').toEqual(reference);
    for (let i = 1; i < file.length; i++) {
      expect(simulate(file, [i]), `split at ${i}`).toEqual(reference);
      for (let j = i + 1; j < file.length; j += 7) expect(simulate(file, [i, j]), `splits at ${i}, ${j}`).toEqual(reference);
    }
  });

  it('property: files mixing valid rows, quoted LFs and doubled quotes, stray and unterminated quotes, CRLF: every chunk size gives the one-read records', () => {
    // Pieces of a field, among them every way a quote can fall.
    const pieceArb = fc.constantFrom('a', '72', ' ', 'é', '"q"', '"a\nb"', '"x,""y"""', '"c\r\nd"', '""', '7"2', "5'10\"", 'x"', '"a"b', '"a""', '"open');
    const fieldArb2 = fc.array(pieceArb, { maxLength: 2 }).map((a) => a.join(''));
    const lineArb = fc.tuple(fc.array(fieldArb2, { minLength: 1, maxLength: 5 }), fc.constantFrom('\n', '\r\n', '\n\n'));
    fc.assert(
      fc.property(fc.array(lineArb, { minLength: 1, maxLength: 12 }), fc.boolean(), fc.integer({ min: 1, max: 48 }), fc.array(fc.nat(), { maxLength: 4 }), (lines, lastEol, size, rawSplits) => {
        const text = lines.map(([fields, eol], i) => fields.join(',') + (i < lines.length - 1 || lastEol ? eol : '')).join('');
        const file = Buffer.from(text, 'utf8');
        const oneRead = simulate(file, []);
        // One read is the parser's reading of the whole file, but for a quote left open at the end (given up on).
        if (!openAtEof(file)) expect(oneRead).toEqual(wholeFile(file));
        expect(simulate(file, readsOf(file, size)), `reads of ${size} bytes`).toEqual(oneRead);
        const splits = [...new Set(rawSplits.map((s) => 1 + (s % Math.max(1, file.length - 1))))].filter((s) => s < file.length).sort((a, b) => a - b);
        expect(simulate(file, splits), `splits at ${splits}`).toEqual(oneRead);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('coordinator: a stray quote before quoted LFs, through the CLI', () => {
  it('reads, rejects and curates the same rows at --chunk-size 1024 as in one chunk', async () => {
    // 300 rows; every 7th note is quoted over two lines; row 3 has a stray quote in its value.
    const dir = tempDir();
    const input = join(dir, 'vitals.csv');
    const lines = ['hospital_id,measurement_date,patient_id,vital_type,value,unit,note'];
    const starts: number[] = [];
    let line = 2;
    for (let i = 0; i < 300; i++) {
      starts.push(line);
      const note = i % 7 === 0 ? `"seen\nat ${i}"` : 'ok';
      lines.push(`H001,2024-01-05,P${i},heart_rate,${i === 3 ? '7"2' : 60 + (i % 40)},bpm,${note}`);
      line += i % 7 === 0 ? 2 : 1;
    }
    writeFileSync(input, lines.join('\n') + '\n');
    const runs = [];
    for (const size of ['1024', '1048576']) {
      const out = join(dir, `out-${size}`);
      const r = await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', out, '--workers', '1', '--as-of', '2024-12-31', '--chunk-size', size]);
      expect(r.code, describeRun(r)).toBe(0);
      const q = await readQuarantine(out, 'vitals');
      const curated = await query(`SELECT patient_key, source_value FROM ${curatedScan(out, 'vitals')} ORDER BY ALL`);
      runs.push({ rows: r.json?.rows, rejects: q.map((x) => [x.line_number, x.reason_codes, x.partition]), curated });
    }
    expect(runs[0]).toMatchObject({ rows: { read: 300, accepted: 299, rejected: 1 }, rejects: [[String(starts[3]), 'row.bad_quote;value.invalid', 'H001']] });
    expect(runs[0].curated).toHaveLength(299);
    expect(runs[1]).toEqual(runs[0]);
  });
});

describe('coordinator: unterminated quote through the CLI', () => {
  it('quarantines line 3 as row.unterminated_quote and curates the later rows', async () => {
    const dir = tempDir();
    const input = join(dir, 'vitals.csv');
    writeFileSync(
      input,
      [
        'hospital_id,measurement_date,patient_id,vital_type,value,unit',
        'H001,2024-01-05,P1,heart_rate,72,bpm',
        'H001,2024-01-05,"P2,heart_rate,73,bpm',
        'H001,2024-01-05,P3,heart_rate,74,bpm',
        'H001,2024-01-06,P4,heart_rate,75,bpm',
        'H001,2024-01-07,P5,heart_rate,76,bpm',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const r = await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', out, '--workers', '1', '--as-of', '2024-12-31']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.json?.rows).toEqual({ read: 5, accepted: 4, rejected: 1 });
    const q = await readQuarantine(out, 'vitals');
    expect(q.map((x) => [x.line_number, x.reason_codes])).toEqual([['3', 'row.unterminated_quote']]);
    const curated = await query(`SELECT source_value FROM ${curatedScan(out, 'vitals')} ORDER BY source_value`);
    expect(curated.map((x) => x.source_value)).toEqual(['72', '74', '75', '76']);
  });
});

// ------------------------------------------------------------------ header

const VITALS_HEADER = 'hospital_id,measurement_date,patient_id,vital_type,value,unit';
const LABS_HEADER = 'hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit';

describe('parseHeader', () => {
  it.each<[string, 'vitals' | 'labs', string | Buffer, { index: number[]; extras: string[]; dataOffset?: number; lines?: number; first?: string }]>([
    ['canonical vitals', 'vitals', `${VITALS_HEADER}\nH1,...`, { index: [0, 1, 2, 3, 4, 5], extras: [], dataOffset: VITALS_HEADER.length + 1, lines: 1 }],
    ['canonical labs', 'labs', `${LABS_HEADER}\n`, { index: [0, 1, 2, 3, 4, 5, 6], extras: [] }],
    ['reordered columns', 'vitals', 'unit,value,vital_type,patient_id,measurement_date,hospital_id\n', { index: [5, 4, 3, 2, 1, 0], extras: [] }],
    ['extra columns', 'vitals', 'note,hospital_id,measurement_date,patient_id,vital_type,value,unit,device\n', { index: [1, 2, 3, 4, 5, 6], extras: ['note', 'device'] }],
    ['case and whitespace in names', 'vitals', ' Hospital_ID , MEASUREMENT_DATE,patient_id ,Vital_Type,VALUE,\tunit\n', { index: [0, 1, 2, 3, 4, 5], extras: [], first: 'Hospital_ID' }],
    ['UTF-8 BOM', 'vitals', `\uFEFF${VITALS_HEADER}\n`, { index: [0, 1, 2, 3, 4, 5], extras: [], dataOffset: 3 + VITALS_HEADER.length + 1, first: 'hospital_id' }],
    ['CRLF', 'vitals', `${VITALS_HEADER}\r\nH1`, { index: [0, 1, 2, 3, 4, 5], extras: [], dataOffset: VITALS_HEADER.length + 2 }],
    ['quoted names', 'vitals', `${VITALS_HEADER.split(',').map((c) => `"${c}"`).join(',')}\n`, { index: [0, 1, 2, 3, 4, 5], extras: [] }],
    ['quoted newline in an extra column name', 'vitals', `${VITALS_HEADER},"a\nb"\nH1`, { index: [0, 1, 2, 3, 4, 5], extras: ['a\nb'], lines: 2 }],
    ['no newline at EOF', 'vitals', VITALS_HEADER, { index: [0, 1, 2, 3, 4, 5], extras: [], dataOffset: VITALS_HEADER.length }],
    ['a CR alone at the very end of the file', 'vitals', `${VITALS_HEADER}\r`, { index: [0, 1, 2, 3, 4, 5], extras: [] }],
    ['a quoted CR in an extra column name', 'vitals', `${VITALS_HEADER},"a\rb"\nH1`, { index: [0, 1, 2, 3, 4, 5], extras: ['a\rb'], lines: 1 }],
  ])('%s', (_name, dataset, text, want) => {
    const buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    const h = parseHeader(dataset, buf, 'f.csv', true)!;
    expect(h.index).toEqual(want.index);
    expect(h.extras).toEqual(want.extras);
    if (want.dataOffset !== undefined) expect(h.dataOffset).toBe(want.dataOffset);
    if (want.lines !== undefined) expect(h.lines).toBe(want.lines);
    if (want.first !== undefined) expect(h.names[0]).toBe(want.first);
  });

  it.each([
    ['empty file', Buffer.alloc(0)],
    ['BOM only', Buffer.from([0xef, 0xbb, 0xbf])],
    // An export of no rows that wrote a line end was "missing required columns", exit 2.
    ['a lone LF', Buffer.from('\n')],
    ['BOM and CRLF', Buffer.from('\uFEFF\r\n')],
    ['blank lines only', Buffer.from('\n\r\n\n')],
  ])('%s → null (zero rows)', (_name, buf) => {
    expect(parseHeader('vitals', buf, 'f.csv', true)).toBeNull();
  });

  it.each([
    ['a blank first line before the header', `\n${VITALS_HEADER}\n`, true],
    ['a lone LF, more of the file to come', '\n', false],
  ])('%s: not empty, the header is missing (exit 2)', (_name, text, atEof) => {
    expectErrorCodeSync(() => parseHeader('vitals', Buffer.from(text), 'f.csv', atEof), 'HCP_ERR_BAD_HEADER');
  });

  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]);
  it.each<[string, 'vitals' | 'labs', Buffer, string, RegExp]>([
    ['missing column', 'vitals', Buffer.from('hospital_id,measurement_date,patient_id,vital_type,unit\n'), 'HCP_ERR_BAD_HEADER', /value/],
    ['labs header for vitals', 'vitals', Buffer.from(`${LABS_HEADER}\n`), 'HCP_ERR_BAD_HEADER', /measurement_date/],
    ['semicolon delimiter', 'vitals', Buffer.from(`${VITALS_HEADER.replace(/,/g, ';')}\n`), 'HCP_ERR_BAD_HEADER', /delimiter/],
    ['tab delimiter', 'vitals', Buffer.from(`${VITALS_HEADER.replace(/,/g, '\t')}\n`), 'HCP_ERR_BAD_HEADER', /delimiter/],
    ['duplicate column', 'vitals', Buffer.from(`${VITALS_HEADER},VALUE\n`), 'HCP_ERR_BAD_HEADER', /value/],
    ['malformed quoting', 'vitals', Buffer.from(`"hospital_id"x,${VITALS_HEADER}\n`), 'HCP_ERR_BAD_HEADER', /quot/],
    // CR-only line ends: the whole file read as the header; with an extra column it passed as header-only, rows lost.
    ['CR-only line ends, extra column', 'vitals', Buffer.from(`${VITALS_HEADER},note\rH001,2024-01-05,MRN1,heart_rate,72,bpm,x\r`), 'HCP_ERR_BAD_HEADER', /CR alone/],
    ['CR-only line ends', 'vitals', Buffer.from(`${VITALS_HEADER}\rH001,2024-01-05,MRN1,heart_rate,72,bpm\r`), 'HCP_ERR_BAD_HEADER', /CR alone/],
    ['a CR alone inside the header line', 'vitals', Buffer.from(`hospital_id,measurement_date\r,patient_id,vital_type,value,unit\n`), 'HCP_ERR_BAD_HEADER', /CR alone/],
    ['PNG bytes', 'vitals', png, 'HCP_ERR_NOT_CSV', /binary|UTF-8/],
    ['NUL bytes', 'vitals', Buffer.from(`hospital_id\0,x\n`), 'HCP_ERR_NOT_CSV', /binary|UTF-8/],
    ['invalid UTF-8 in the header', 'vitals', Buffer.concat([Buffer.from('hospital_id,'), Buffer.from([0xff]), Buffer.from('\n')]), 'HCP_ERR_NOT_CSV', /UTF-8/],
  ])('%s → %s', (_name, dataset, buf, code, message) => {
    const e = expectErrorCodeSync(() => parseHeader(dataset, buf, 'f.csv', true), code);
    expect(e.message).toMatch(message);
  });

  it('a header with no LF that is not the whole file is an error (too long or an open quote)', () => {
    expectErrorCodeSync(() => parseHeader('vitals', Buffer.from(`"${VITALS_HEADER}`), 'f.csv', false), 'HCP_ERR_BAD_HEADER');
  });

  it('names the missing column in the error context', () => {
    const e = expectErrorCodeSync(() => parseHeader('labs', Buffer.from('hospital_id,test_date,patient_id,test_type,result_value,unit\n'), 'f.csv', true), 'HCP_ERR_BAD_HEADER') as unknown as {
      context: { column: string; line: number };
    };
    expect(e.context).toMatchObject({ column: 'reference_range', line: 1 });
  });
});

describe('extra column names as logs and summaries show them', () => {
  // A name with a line break means the header ran on into the rows: its extras may be patient IDs (SPEC §3).
  it.each<[string, string, string[], RegExp | null]>([
    ['none', `${VITALS_HEADER}\n`, [], null],
    ['plain extras', `note,${VITALS_HEADER},device\n`, ['note', 'device'], /^extra column\(s\) ignored: note, device$/],
    ['quoted line break in a name', `${VITALS_HEADER},"a\nMRN1,x"\n`, ['(column 7: not shown)'], /^1 extra column\(s\) ignored, names not shown/],
    ['quoted CR line ends in a name', `${VITALS_HEADER},"note\rH1,2024-01-05,MRN1,heart_rate,72,bpm,x"\n`, ['(column 7: not shown)'], /^1 extra column\(s\) ignored, names not shown/],
    // A data row glued onto the header line with a comma: its date and value are names no header has.
    ['a data row glued on with a comma', `${VITALS_HEADER},H1,2024-01-05,MRN1,heart_rate,72,bpm\n`, [7, 8, 9, 10, 11, 12].map((c) => `(column ${c}: not shown)`), /^6 extra column\(s\) ignored, names not shown: an extra column name is a value/],
    ['a number as a name', `note,${VITALS_HEADER},-7.5e2\n`, ['(column 1: not shown)', '(column 8: not shown)'], /^2 extra column\(s\) ignored, names not shown/],
    ['a date and time as a name', `${VITALS_HEADER},2024-1-5T08:00\n`, ['(column 7: not shown)'], /^1 extra column\(s\) ignored, names not shown/],
    ['names with digits, a date-like prefix, a single-letter unit are still names', `${VITALS_HEADER},spo2_device,ward 3,2024-01-05_note,C,range_low-high\n`, ['spo2_device', 'ward 3', '2024-01-05_note', 'C', 'range_low-high'], /^extra column\(s\) ignored: spo2_device, ward 3, 2024-01-05_note, C, range_low-high$/],
    // No number and no ISO date: an empty date, a text value; the unit gives it away.
    ['a vitals row with an empty date and a text value', `${VITALS_HEADER},H1,,MRN1,heart_rate,abc,bpm\n`, [7, 8, 9, 10, 11, 12].map((c) => `(column ${c}: not shown)`), /names not shown: an extra column name is a value/],
  ])('%s', (_name, text, extras, warning) => {
    const h = parseHeader('vitals', Buffer.from(text), 'f.csv', true)!;
    const shown = shownNames(h);
    expect(shown.extras).toEqual(extras);
    expect(shown.names.filter((_, i) => h.index.includes(i))).toEqual(VITALS_HEADER.split(','));
    const w = extrasWarning(h);
    if (warning) expect(w).toMatch(warning);
    else expect(w).toBeNull();
    expect(JSON.stringify([shown, w])).not.toMatch(/MRN/);
  });
});

describe('a labs data row glued onto the header line: no name shown', () => {
  // Labs values are often text (`<5`, `positive`) and dates not ISO: the range, the date or the unit gives it away.
  const LABS_HEADER = 'hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit';
  it.each<[string, string]>([
    ['a censored value, a range, a US date', 'H1,01/05/2024,MRN1,glucose,<5,70-100,mg/dL'],
    ['an empty date, a text value, a spaced range', 'H1,,MRN1,potassium,positive,3.5 - 5.1,mmol/L'],
    ['an empty date and range, a text value, a unit', 'H1,,MRN1,hba1c,high,,mmol/mol'],
    ['a bound, no unit', 'H1,,MRN1,sodium,pos,>=135,'],
    ['a dotted date only', 'H1,05.01.2024,MRN1,sodium,pos,,'],
  ])('%s', (_name, row) => {
    const h = parseHeader('labs', Buffer.from(`${LABS_HEADER},${row}\n`), 'f.csv', true)!;
    const shown = shownNames(h);
    expect(shown.extras).toEqual([8, 9, 10, 11, 12, 13, 14].map((c) => `(column ${c}: not shown)`));
    expect(extrasWarning(h)).toMatch(/^7 extra column\(s\) ignored, names not shown: an extra column name is a value/);
    expect(JSON.stringify([shown, extrasWarning(h)])).not.toMatch(/MRN/);
  });
});

describe('parseHeader ends the header where the parser ends its first record', () => {
  // Rows after the header: plain, one with a quoted field, one with a stray quote, and a repeated header
  // (two exports concatenated) last: a header read by quote parity would run into them.
  const ROWS = [
    'H1,2024-01-05,P1,heart_rate,72,bpm,a',
    'H1,2024-01-05,P2,heart_rate,73,"bpm",b',
    'H1,2024-01-05,P3,heart_rate,7"4,bpm,c',
    `${VITALS_HEADER},note`,
  ];
  const SHAPES: [string, string][] = [
    ['plain', `${VITALS_HEADER},note`],
    ['quoted names', `"hospital_id",measurement_date,patient_id,vital_type,value,unit,"note"`],
    ['doubled quotes in a name', `${VITALS_HEADER},"no""te"`],
    ['quoted LF in a name', `${VITALS_HEADER},"no\nte"`],
    ['CRLF', `${VITALS_HEADER},note\r`],
    ['BOM', `\uFEFF${VITALS_HEADER},note`],
    ['stray quote in an extra name', `${VITALS_HEADER},no"te`],
    ['stray quote in a required name', `hospital_id,measurement_date,patient_id,vital_type,value,un"it,note`],
    ['text after a closing quote', `${VITALS_HEADER},"no"te`],
    ['a quote after a closing quote and text', `${VITALS_HEADER},"no"t"e`],
    ['a stray quote, then a quoted LF', `${VITALS_HEADER},n"o,"a\nb"`],
    ['a stray quote, then a quote closing a field', `${VITALS_HEADER},"a"b",note`],
  ];
  const TAILS: [string, string[]][] = [
    ['all rows', ROWS],
    ['plain rows and the repeated header', [ROWS[0], ROWS[3]]],
    ['the row with a stray quote', [ROWS[2], ROWS[0]]],
    ['the row with a quoted field', [ROWS[1]]],
  ];
  const cases = SHAPES.flatMap(([shape, head]) => TAILS.flatMap(([tail, rows]) => [true, false].map((atEof) => [shape, tail, atEof, `${head}\n${rows.join('\n')}\n`] as const)));

  it.each(cases)('%s, then %s (atEof %s)', (_shape, _tail, atEof, text) => {
    const buf = Buffer.from(text, 'utf8');
    const start = text.startsWith('\uFEFF') ? 3 : 0;
    const [first] = parseAll(buf, start).recs;
    if (first.problem !== Problem.None) {
      // The parser rejects the header record: so must the header reader, whatever follows it.
      const e = expectErrorCodeSync(() => parseHeader('vitals', buf, 'f.csv', atEof), 'HCP_ERR_BAD_HEADER');
      expect(e.message).toMatch(/malformed quoting/);
      return;
    }
    const h = parseHeader('vitals', buf, 'f.csv', atEof)!;
    expect([h.dataOffset, h.lines, h.names]).toEqual([first.end, countLF(buf, start, first.end), first.fields.map((f) => f.trim())]);
  });
});
