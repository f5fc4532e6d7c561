import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRecords, parseText } from '../src/parse/csv.js';

/** Records as [fields, line, problem] from the byte parser and the text parser. */
function both(csv: string) {
  const buf = Buffer.from(csv, 'utf8');
  const bytes: unknown[] = [];
  const a = parseRecords(buf, 0, buf.length, (r) => bytes.push([r.fields.slice(), r.line, r.problem]));
  const text: unknown[] = [];
  const b = parseText(csv, (r) => text.push([r.fields.slice(), r.line, r.problem]));
  return { bytes: [bytes, a], text: [text, b] };
}

describe('parseText (the hot path) agrees with parseRecords (the byte parser)', () => {
  it.each([
    ['plain', 'a,b\nc,d\n'],
    ['quoted comma and doubled quote', 'a,"b,""c"""\n'],
    ['embedded newline', '"x\ny",z\nw,v\n'],
    ['CRLF and trailing CR', 'a,b\r\nc,d\r'],
    ['blank lines', '\n\r\na,b\n\n'],
    ['trailing comma, no newline', 'a,b,'],
    ['unterminated quote', 'a,"b\nc,d\n'],
    ['quote inside unquoted field', 'a,b"c,d\n'],
    ['text after closing quote', '"a"x,b\n'],
    ['multibyte', 'é,°C,µmol/L\n'],
  ])('%s', (_name, csv) => {
    const { bytes, text } = both(csv);
    expect(text).toEqual(bytes);
  });

  it('on random CSV-like text', () => {
    const char = fc.constantFrom('a', 'b', ',', '"', '\n', '\r', ' ', 'é', '°');
    fc.assert(
      fc.property(fc.array(char, { maxLength: 60 }), (chars) => {
        const { bytes, text } = both(chars.join(''));
        expect(text).toEqual(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});
