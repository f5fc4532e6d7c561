/**
 * The worker core (src/transform/chunk.ts) against an independent
 * reference built from the string parser, `checkRow` and Node's HMAC: on
 * generated chunks mixing clean rows with every kind of oddity (padding,
 * quoting, CRLF, blank lines, non-ASCII, invalid UTF-8, wrong field counts,
 * failing rules, reordered and extra columns), both must read the same
 * records, reject the same rows with the same codes, and accept the same
 * rows with the same curated values, patient keys and source text — and
 * equal rows (after trimming) must share a fingerprint, unequal ones not.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { isUtf8 } from 'node:buffer';
import { parseRecords, parseText, Problem } from '../src/parse/csv.js';
import { COLUMNS, type Dataset } from '../src/registry.js';
import { RULE_CODES, type RowIssue } from '../src/rules/codes.js';
import { INVALID_HOSPITAL, isValidHospitalId, monthBounds, parseIsoDate } from '../src/rules/fields.js';
import { checkRow, emptyCheckedRow, ruleContext } from '../src/rules/row.js';
import { ChunkProcessor } from '../src/transform/chunk.js';
import { Dictionaries, resolve } from '../src/merge/dicts.js';
import { resultBuffers } from '../src/merge/recycle.js';
import { wordsToHex } from '../src/transform/sha256.js';
import { encodeBatch } from '../src/sinks/encode.js';
import { type Batch, type ChunkContext, PENDING } from '../src/types.js';
import { type ChunkRow, csvRecords, runChunks } from './helpers.js';

const KEY = 'fast-path-test-key';
const AS_OF = parseIsoDate('2024-12-31');

interface RefResult {
  rows: number;
  lines: number;
  blankLines: number;
  rejects: { line: number; codes: string; hospital: string; fields: string[]; raw: string }[];
  accepted: (Omit<ChunkRow, 'fp' | 'start'> & { trimmed: string })[];
}

/** What the contract says a chunk yields, computed the slow, obvious way. */
function reference(ctx: ChunkContext, bytes: Buffer): RefResult {
  const rules = ruleContext(ctx.dataset, ctx.asOfDay, ctx.period);
  const row = emptyCheckedRow();
  const out: RefResult = { rows: 0, lines: 0, blankLines: 0, rejects: [], accepted: [] };
  const { lines, blankLines } = parseRecords(bytes, 0, bytes.length, (r) => {
    out.rows++;
    const fields = r.fields.slice();
    const countOk = fields.length === ctx.columnCount;
    // A record with the wrong field count is never attributed: its hospital_id column may hold another field.
    const hospitalOf = () => {
      const h = countOk ? fields[ctx.index[0]].trim() : '';
      return isValidHospitalId(h) ? h : INVALID_HOSPITAL;
    };
    // The record's problems, found on their own: its bytes checked as UTF-8, and its quoting parsed alone (as Latin-1,
    // byte for byte), so no problem can hide another.
    const invalid = !isUtf8(bytes.subarray(r.start, r.end));
    let quoting: number = Problem.None;
    parseText(bytes.toString('latin1', r.start, r.end), (t) => (quoting |= t.problem));
    const unterminated = (quoting & Problem.UnterminatedQuote) !== 0;
    const badQuote = (quoting & Problem.BadQuote) !== 0;
    if (!countOk || invalid || unterminated) {
      // Every record-level code, in catalogue order; a wrong count is not reported with an unterminated quote (the record has no end).
      const failed = new Set<string>();
      if (invalid) failed.add('row.invalid_utf8');
      if (!countOk && !unterminated) failed.add('row.field_count');
      if (unterminated) failed.add('row.unterminated_quote');
      if (badQuote) failed.add('row.bad_quote');
      const code = RULE_CODES.filter((c) => failed.has(c)).join(';');
      const raw = bytes.toString(invalid ? 'latin1' : 'utf8', r.start, r.end).replace(/\r?\n$/, '');
      out.rejects.push({ line: r.line, codes: code, hospital: hospitalOf(), fields, raw });
      return;
    }
    const f = ctx.index.map((k) => fields[k].trim());
    const issues: RowIssue[] = [];
    const ok = checkRow(rules, f, row, issues);
    if (badQuote) issues.unshift({ code: 'row.bad_quote', field: '' });
    if (!ok || issues.length > 0) {
      out.rejects.push({ line: r.line, codes: issues.map((i) => i.code).join(';'), hospital: hospitalOf(), fields, raw: '' });
      return;
    }
    out.accepted.push({
      hospital: row.hospitalId,
      month: row.monthIndex,
      day: row.day,
      measure: row.measure,
      flag: row.flag,
      value: row.value,
      refLow: ctx.dataset === 'labs' ? row.refLow : NaN,
      refHigh: ctx.dataset === 'labs' ? row.refHigh : NaN,
      patientKey: createHmac('sha256', KEY).update(`${row.hospitalId}|${row.patientId}`).digest('hex').slice(0, 32),
      sourceValue: row.sourceValue,
      sourceUnit: row.sourceUnit,
      line: r.line,
      trimmed: JSON.stringify(fields.map((x) => x.trim())),
    });
  });
  out.lines = lines;
  out.blankLines = blankLines;
  return out;
}

// ------------------------------------------------------------------ generated rows

const oneOf = <T>(...xs: T[]) => fc.constantFrom(...xs);

/** Odd field values: invalid ones, and valid ones only the string path reads. */
const FIELD_VALUES: Record<string, string[]> = {
  hospital_id: ['H001', '', 'ALL', '__invalid__', 'a/b', 'H' + 'x'.repeat(32), 'x'.repeat(32), 'Hé'],
  date: ['2024-01-15', '2024-02-29', '2024-03-01', '2023-02-29', '2024-13-01', '2024-1-5', '', '2030-01-01', '2024-06-31', '0000-01-01'],
  patient_id: ['P1', 'P2', 'MRN0001', 'p_2-x', '', 'bad id', 'é', 'P'.repeat(65), 'P'.repeat(64)],
  vital_type: ['heart_rate', 'temperature', 'weight', 'height', 'blood_pressure_systolic', 'oxygen_saturation', 'pulse', '', 'Heart_Rate'],
  test_type: ['glucose', 'hba1c', 'creatinine', 'sodium', 'ldl', '', 'GLUCOSE'],
  value: ['72', '36.6', '98.6', '0.5', '.5', '5.', '+80', '-1.5', '180', '1e3', 'NaN', 'Infinity', '0x1A', '1,000', '', '7.2345678901234567', '12345678901234567', '0072', '150',
    // plausible magnitudes that only the exact (string) parse may read, and malformed numbers
    '72.000000000000001', '98.60000000000001', '70.00000000000000000001', '7.2.1', '72..', '.', '+', '-', '+.5', '-.',
    // past a double's range (not finite), and 1e308 (finite)
    '1' + '0'.repeat(400), '1' + '0'.repeat(308)],
  unit: ['bpm', 'BPM', '/min', 'celsius', 'C', '°C', 'F', '°F', '[degF]', 'kg', 'lb', 'cm', 'in', 'm', '%', 'mmHg', 'mg/dL', 'mmol/L', 'mmol/mol', 'umol/L', 'µmol/L', 'g/L', '', 'furlong', '°\u2009C', 'µ', '℃'],
  reference_range: ['', '70-100', '3.5 - 5.1', '<5', '<=5.6', '>0.6', '>=1', '100-70', 'abc', '4.0-5.6', '3.5–5.1', '≤5.6',
    // bounds past a double's range, and finite ones that overflow in the canonical unit (mmol/L)
    `0-1${'0'.repeat(400)}`, `>=1${'0'.repeat(400)}`, `0-1${'0'.repeat(308)}`, `<1${'0'.repeat(308)}`],
  extra: ['', 'note', 'x,y', 'é'],
};

/** How a field is written: as is, padded, quoted, quoted with an escaped quote, with a stray quote. */
const DRESS = fc.constantFrom('plain', 'plain', 'plain', 'pad', 'quote', 'quote', 'quotepad', 'escaped', 'stray', 'newline', 'unipad', 'uniquote');

/** Whitespace String.prototype.trim removes beyond ASCII (no-break space, em space, ideographic space, BOM…), and U+200B, which it keeps. */
const UNICODE_PAD = ['\u00a0', '\u2003', '\u3000', '\ufeff', '\u1680', '\u2028', '\u200b'];

function dress(v: string, how: string): string {
  switch (how) {
    case 'pad':
      return ` ${v}\t`;
    case 'quote':
      return `"${v}"`;
    case 'quotepad':
      return `" ${v} "`;
    case 'escaped':
      return `"${v}""x"`;
    case 'stray':
      return `${v}"`;
    case 'newline':
      return `"${v}\n"`;
    case 'unipad':
      return `${UNICODE_PAD[v.length % UNICODE_PAD.length]}${v}`;
    case 'uniquote':
      return `"${v}${UNICODE_PAD[(v.length + 3) % UNICODE_PAD.length]}"`;
    default:
      return v.includes(',') || v.includes('"') ? `"${v.replace(/"/g, '""')}"` : v;
  }
}

const EOL = fc.constantFrom('\n', '\n', '\n', '\r\n');

interface Layout {
  dataset: Dataset;
  /** File column names in file order. */
  names: string[];
}

const LAYOUT: fc.Arbitrary<Layout> = fc
  .tuple(fc.constantFrom<Dataset>('vitals', 'labs'), fc.boolean(), fc.boolean())
  .map(([dataset, shuffle, extra]) => {
    const names = [...COLUMNS[dataset]];
    if (shuffle) names.reverse();
    if (extra) names.splice(2, 0, 'extra');
    return { dataset, names };
  });

const nameToField = (dataset: Dataset, name: string) =>
  name === 'measurement_date' || name === 'test_date' ? 'date' : name === 'result_value' ? 'value' : dataset === 'labs' && name === 'test_type' ? 'test_type' : name;

/** Clean (type, value, unit) triples: every unit spelling and conversion path. */
const CLEAN: Record<Dataset, [string, string, string][]> = {
  vitals: [
    ['heart_rate', '72', 'bpm'], ['heart_rate', '55', '/min'], ['heart_rate', '101', 'BPM'], ['temperature', '98.6', 'F'], ['temperature', '37.1', '°C'],
    ['temperature', '36.6', 'celsius'], ['temperature', '38.25', 'Cel'], ['weight', '154.3', 'lb'], ['weight', '70.5', 'kg'], ['height', '70', 'in'],
    ['height', '1.75', 'm'], ['oxygen_saturation', '97', '%'], ['blood_pressure_systolic', '120', 'mmHg'], ['blood_pressure_diastolic', '85', 'mm[Hg]'],
    ['respiratory_rate', '16', 'breaths/min'], ['respiratory_rate', '22', '/min'],
  ],
  labs: [
    ['glucose', '95', 'mg/dL'], ['glucose', '5.4', 'mmol/L'], ['hba1c', '42', 'mmol/mol'], ['hba1c', '5.9', '%'], ['creatinine', '88', 'µmol/L'],
    ['creatinine', '1.1', 'mg/dL'], ['sodium', '140', 'mEq/L'], ['potassium', '4.2', 'mmol/L'], ['hemoglobin', '135', 'g/L'], ['cholesterol', '5.2', 'mmol/L'],
  ],
};

/**
 * One physical row: mostly a clean row (so the fast path accepts it), with
 * now and then one field swapped for an odd value or written oddly; or a
 * blank line, or a row with a field too few or too many.
 */
function rowArb(layout: Layout): fc.Arbitrary<string> {
  const clean = fc.record({
    hospital_id: oneOf('H001', 'H002', 'h-3_x'),
    date: oneOf('2024-01-15', '2024-02-29', '2024-02-03', '2024-03-01'),
    patient_id: oneOf('P1', 'P2', 'MRN0001', 'p_2-x'),
    what: fc.constantFrom(...CLEAN[layout.dataset]),
    reference_range: oneOf('', '70-100', '3.5 - 5.1', '<5', '<=5.6', '>0.6', '>=1', '4.0-5.6'),
    extra: oneOf('', 'note'),
  });
  const odd = fc.option(fc.tuple(fc.nat(layout.names.length - 1), fc.nat()), { freq: 3 });
  const dressing = fc.array(fc.oneof({ weight: 6, arbitrary: fc.constant('plain') }, { weight: 1, arbitrary: DRESS }), { minLength: layout.names.length, maxLength: layout.names.length });
  const record = fc.tuple(clean, odd, dressing, EOL).map(([c, swap, how, eol]) => {
    const value = (name: string): string => {
      const f = nameToField(layout.dataset, name);
      if (f === 'vital_type' || f === 'test_type') return c.what[0];
      if (f === 'value') return c.what[1];
      if (f === 'unit') return c.what[2];
      return (c as unknown as Record<string, string>)[f];
    };
    const fields = layout.names.map(value);
    if (swap) {
      const [k, pick] = swap;
      const pool = FIELD_VALUES[nameToField(layout.dataset, layout.names[k])];
      fields[k] = pool[pick % pool.length];
    }
    return fields.map((v, k) => dress(v, how[k])).join(',') + eol;
  });
  return fc.oneof(
    { weight: 20, arbitrary: record },
    { weight: 1, arbitrary: fc.constantFrom('\n', '\r\n', '   \n') },
    { weight: 1, arbitrary: record.map((r) => r.replace(/,[^,]*$/, '\n')) }, // one field short
    { weight: 1, arbitrary: record.map((r) => r.replace(/\r?\n$/, ',extra\n')) }, // one field long
  );
}

/**
 * A chunk: generated rows, some repeated (duplicates), sometimes ending without a line end, sometimes with invalid
 * UTF-8 (in the middle, or anywhere), sometimes with a quote opened at a field's start and never closed (the rest
 * of the chunk is its record: with a bad byte before or after it, both problems in one record).
 */
const CHUNK = LAYOUT.chain((layout) =>
  fc
    .tuple(
      fc.array(rowArb(layout), { minLength: 1, maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 5 }),
      fc.boolean(),
      fc.boolean(),
      fc.option(fc.nat(), { freq: 4 }),
      fc.option(fc.nat(), { freq: 4 }),
    )
    .map(([rows, dups, cutEnd, badByte, badAt, openAt]) => {
      for (const d of dups) rows.push(rows[d % rows.length]);
      let text = rows.join('');
      if (cutEnd) text = text.replace(/\r?\n$/, '');
      if (openAt !== null) {
        // After the last quote (so no later quote closes it), at the start of a field.
        const from = Math.max(text.lastIndexOf('"') + 1, openAt % (text.length + 1));
        const at = text.indexOf(',', from);
        if (at !== -1) text = text.slice(0, at + 1) + '"' + text.slice(at + 1);
      }
      let bytes = Buffer.from(text, 'utf8');
      if ((badByte || badAt !== null) && bytes.length > 4) {
        bytes = Buffer.from(bytes);
        if (badByte) bytes[bytes.length >> 1] = 0xff;
        if (badAt !== null) bytes[badAt % bytes.length] = 0xfe;
      }
      return { layout, bytes };
    }),
);

function contextFor(layout: Layout, period: string | null = null): ChunkContext {
  return {
    dataset: layout.dataset,
    index: COLUMNS[layout.dataset].map((c) => layout.names.indexOf(c)),
    columnCount: layout.names.length,
    asOfDay: AS_OF,
    period: period ? monthBounds(period) : null,
    key: KEY,
    run: 'fastpath-test',
  };
}

/**
 * Run budget: shrinking a failing chunk can take very long, so a run that
 * goes past its time limit stops and fails with the smallest chunk found.
 */
const BUDGET = (numRuns: number) => ({ numRuns, interruptAfterTimeLimit: 30_000, markInterruptAsFailure: true });

/** Object.is for numbers (NaN equals NaN, 0 and -0 differ), so values compare exactly. */
const exact = (x: unknown) => (typeof x === 'number' ? (Number.isNaN(x) ? 'NaN' : Object.is(x, -0) ? '-0' : x) : x);
const canon = (r: object) => JSON.stringify(Object.entries(r).map(([k, v]) => [k, exact(v)]));

function compare(layout: Layout, bytes: Buffer, period: string | null = null): void {
  const ctx = contextFor(layout, period);
  const ref = reference(ctx, bytes);
  const [got] = runChunks(ctx, [bytes]);
  expect({ rows: got.rows, lines: got.lines, blankLines: got.blankLines }).toEqual({ rows: ref.rows, lines: ref.lines, blankLines: ref.blankLines });
  // A reject's quarantine cells, read back as CSV: its codes, the fields as read (as many as the header has), the raw record.
  const cellsOf = (cells: string) => csvRecords(cells + '\n')[0].fields;
  expect(got.rejects.line.map((line, i) => ({ line, codes: got.rejects.codes[i], hospital: got.rejects.hospital[i], cells: cellsOf(got.rejects.cells[i]) }))).toEqual(
    ref.rejects.map(({ line, codes, hospital, fields, raw }) => ({ line, codes, hospital, cells: [codes, ...Array.from({ length: ctx.columnCount }, (_, k) => fields[k] ?? ''), raw] })),
  );
  // The report's checks by hospital (src/coordinator.ts): non-empty required cells = the rejected rows' (counted by
  // the worker) + every accepted row's, but a defaulted reference range (counted by partition); read directly here.
  const ranges = ctx.dataset === 'labs' ? COLUMNS.labs.indexOf('reference_range') : -1;
  const direct = new Map<string, { filled: number[]; defaulted: number }>();
  const directOf = (h: string) => direct.get(h) ?? direct.set(h, { filled: ctx.index.map(() => 0), defaulted: 0 }).get(h)!;
  for (const r of ref.rejects) {
    const d = directOf(r.hospital);
    if (r.raw === '') ctx.index.forEach((k, i) => (d.filled[i] += r.fields[k].trim() === '' ? 0 : 1));
  }
  for (const r of ref.accepted) {
    const d = directOf(r.hospital);
    const trimmed = JSON.parse(r.trimmed) as string[];
    ctx.index.forEach((k, i) => (d.filled[i] += trimmed[k] === '' ? 0 : 1));
    if (ranges >= 0 && trimmed[ctx.index[ranges]] === '') d.defaulted++;
  }
  const derived = new Map<string, { filled: number[]; defaulted: number }>();
  const derivedOf = (h: string) => derived.get(h) ?? derived.set(h, { filled: ctx.index.map(() => 0), defaulted: 0 }).get(h)!;
  for (const [h, f] of Object.entries(got.rejects.filled)) f.forEach((n, i) => (derivedOf(h).filled[i] += n));
  for (const h of new Set(got.rejects.hospital)) derivedOf(h);
  got.parts.forEach((part, p) => {
    const d = derivedOf(part.hospital);
    const n = got.partStart[p + 1] - got.partStart[p];
    d.defaulted += part.defaulted;
    d.filled.forEach((_, i) => (d.filled[i] += n - (i === ranges ? part.defaulted : 0)));
  });
  const sorted = (m: Map<string, unknown>) => [...m.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1));
  expect(sorted(derived)).toEqual(sorted(direct));
  // …and they add up to the chunk's own count.
  expect(ctx.index.map((_, i) => [...derived.values()].reduce((s, d) => s + d.filled[i], 0))).toEqual(got.filled);
  // Accepted rows: the same set with the same values (the chunk groups them by partition; compare in line order).
  const mine = got.accepted.map(({ fp: _f, start: _s, ...r }) => r).sort((a, b) => a.line - b.line);
  const theirs = ref.accepted.map(({ trimmed: _t, ...r }) => r);
  expect(mine.map(canon)).toEqual(theirs.map(canon));
  // Fingerprints: equal rows (after trimming) share one, different rows do not.
  const byLine = new Map(ref.accepted.map((r) => [r.line, r.trimmed]));
  const fpOf = new Map<string, string>();
  const rowOf = new Map<string, string>();
  for (const r of got.accepted) {
    const fp = r.fp.join(':');
    const row = byLine.get(r.line)!;
    if (fpOf.has(row)) expect(fp).toBe(fpOf.get(row));
    else fpOf.set(row, fp);
    if (rowOf.has(fp)) expect(row).toBe(rowOf.get(fp));
    else rowOf.set(fp, row);
  }
}

describe('the worker core agrees with the reference on generated chunks', () => {
  it('records, rejects, accepted values, patient keys and fingerprints', () => {
    fc.assert(
      fc.property(CHUNK, ({ layout, bytes }) => compare(layout, bytes)),
      BUDGET(600),
    );
  });

  it('with --period (rows outside the month go to the string path and are rejected there)', () => {
    fc.assert(
      fc.property(CHUNK, ({ layout, bytes }) => compare(layout, bytes, '2024-02')),
      BUDGET(150),
    );
  });

  it.each<[string, string]>([
    ['clean vitals', 'H001,2024-03-15,P1,heart_rate,72,bpm\nH001,2024-03-15,P1,temperature,98.6,F\n'],
    ['a visit, then another patient', 'H001,2024-03-15,P1,heart_rate,72,bpm\nH001,2024-03-15,P1,weight,70,kg\nH001,2024-03-15,P2,weight,70,kg\nH002,2024-03-15,P2,weight,70,kg\n'],
    ['quoted units and CRLF', 'H001,2024-03-15,P1,heart_rate,72,"bpm"\r\nH001,2024-03-15,P1,temperature," 37.1 ",°C\r\n'],
    ['the same hospital, date and patient after a rejected row', 'H001,2024-03-15,P1,heart_rate,72,bpm\nH001,2024-03-15,P1,heart_rate,999,bpm\nH001,2024-03-15,P1,heart_rate,73,bpm\n'],
    ['a trailing comma at the very end', 'H001,2024-03-15,P1,heart_rate,72,'],
    ['a lone CR at the end', 'H001,2024-03-15,P1,heart_rate,72,bpm\n\r'],
    ['a value too long for the fast parse', 'H001,2024-03-15,P1,heart_rate,72.00000000000000001,bpm\n'],
  ])('%s', (_name, text) => {
    compare({ dataset: 'vitals', names: [...COLUMNS.vitals] }, Buffer.from(text, 'utf8'));
  });
});

describe('non-ASCII bytes (the fast path takes well-formed UTF-8; trimming beyond ASCII and malformed bytes are the string path\'s)', () => {
  const withNote: Layout = { dataset: 'vitals', names: [...COLUMNS.vitals, 'extra'] };
  const row = (unit: string, note: string) => Buffer.from(`H001,2024-03-15,P1,temperature,37.1,${unit},${note}\n`, 'utf8');

  it.each<[string, Buffer]>([
    ['units and free text in every UTF-8 length', Buffer.concat(['°C', 'µmol/L', 'é', '€', 'x😀'].map((s) => row('°C', s)))],
    // Equal after trimming: one fingerprint (and a duplicate of the first row); U+200B is not trimmed: another.
    ['Unicode whitespace around a free-text field', Buffer.concat(['note', '\u00a0note', 'note\u3000', '"\ufeffnote"', '\u2028note\u2003', '\u200bnote'].map((s) => row('°C', s)))],
    // The plain ones take the fast path, the padded ones the string path: the same fingerprint either way.
    ['Unicode whitespace around the unit', Buffer.concat(['°C', '\u00a0°C', '°C\u3000', '"\u2009°F"', '°F'].map((u) => row(u, 'n')))],
    // ASCII trimming that uncovers a no-break space, and Unicode padding inside quotes.
    ['ASCII and Unicode padding together', Buffer.concat(['note', 'note\u00a0 ', ' \u00a0note\t', '" \u3000note"', '"note\u2003 "'].map((s) => row('°C', s)))],
    // Malformed UTF-8 and a quote problem in one record: both reported (an unterminated quote without a field count).
    ['malformed UTF-8, then an unterminated quote', Buffer.concat([row('°C', 'n'), Buffer.from('H001,2024-03-15,P'), Buffer.from([0xff]), Buffer.from('1,temperature,"37.1,°C,n\n'), row('°C', 'm')])],
    ['an unterminated quote, then malformed UTF-8', Buffer.concat([row('°C', 'n'), Buffer.from('H001,2024-03-15,P1,temperature,37.1,°C,"n\n'), Buffer.from([0xc3]), row('°C', 'm')])],
    ['malformed UTF-8 and a bad quote', Buffer.concat([Buffer.from('H001,2024-03-15,P1,temperature,3"7.1,°C,x'), Buffer.from([0x80]), Buffer.from('y\n'), row('°C', 'n')])],
    ['malformed UTF-8, a bad quote and a field too many', Buffer.concat([Buffer.from('H001,2024-03-15,P1,temperature,3"7.1,°C,x'), Buffer.from([0x80]), Buffer.from('y,z\n'), row('°C', 'n')])],
    ['malformed UTF-8 inside a quoted field', Buffer.concat([Buffer.from('H001,2024-03-15,P1,temperature,37.1,"°C","x'), Buffer.from([0xe2, 0x28, 0xa1]), Buffer.from('y"\n')])],
    // A sequence cut short by the end of the chunk (no line end after it).
    ['a truncated sequence at the very end', Buffer.concat([row('°C', 'n'), Buffer.from('H001,2024-03-15,P1,temperature,37.1,°C,x'), Buffer.from([0xe2, 0x82])])],
    [
      'malformed UTF-8 in a free-text field',
      Buffer.concat(
        [[0x80], [0xc0, 0xaf], [0xc2], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xe2, 0x82, 0xac]].map((bad) =>
          Buffer.concat([Buffer.from('H001,2024-03-15,P1,temperature,37.1,°C,x'), Buffer.from(bad), Buffer.from('y\n')]),
        ),
      ),
    ],
  ])('%s', (_name, bytes) => {
    compare(withNote, bytes);
  });

  // The comparisons above hold whichever path reads a row; this pins down which one does.
  const utf8 = (text: string) => Buffer.from(text, 'utf8');
  it.each<[string, Buffer, number]>([
    ['°C, °F and free text in UTF-8: the fast path', utf8('H001,2024-03-15,P1,temperature,37.1,°C,é\nH001,2024-03-15,P1,temperature,"98.6",°F,😀\n'), 0],
    ['Unicode padding: the string path', utf8('H001,2024-03-15,P1,temperature,37.1,\u00a0°C,n\nH001,2024-03-15,P1,temperature,37.1,°C,n\u3000\n'), 2],
    ['malformed UTF-8: the string path', Buffer.concat([utf8('H001,2024-03-15,P1,temperature,37.1,°C,x'), Buffer.from([0x80]), utf8('y\n')]), 1],
  ])('%s', (_name, input, slow) => {
    const spy = vi.spyOn(ChunkProcessor.prototype as unknown as { slowRecord: () => number }, 'slowRecord');
    try {
      const [got] = runChunks(contextFor(withNote), [input]);
      expect(got.rows).toBe(input.filter((c) => c === 10).length);
      expect(spy).toHaveBeenCalledTimes(slow);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('wide records: more fields than the fast path\'s default scratch (256)', () => {
  const extras = Array.from({ length: 294 }, (_, k) => `x${k}`);
  const tail: Layout = { dataset: 'vitals', names: [...COLUMNS.vitals, ...extras] };
  const head: Layout = { dataset: 'labs', names: [...extras, ...COLUMNS.labs] };
  /** A row of `layout` with the required fields of a clean row and extra field k set to `x(k)`. */
  const rowOf = (layout: Layout, x: (k: number) => string) => {
    const clean: Record<string, string> = { hospital_id: 'H001', measurement_date: '2024-03-15', test_date: '2024-03-15', patient_id: 'P1', vital_type: 'heart_rate', value: '72', unit: 'bpm', test_type: 'glucose', result_value: '95', reference_range: '70-100' };
    if (layout.dataset === 'labs') clean.unit = 'mg/dL';
    return layout.names.map((n, k) => clean[n] ?? x(k)).join(',') + '\n';
  };
  const bytesOf = (layout: Layout, ...xs: ((k: number) => string)[]) => Buffer.from(xs.map((x) => rowOf(layout, x)).join(''), 'utf8');
  const last = (layout: Layout, v: string) => (k: number) => (k === layout.names.length - 1 || (layout === head && k === 293) ? v : '');

  it.each<[string, Layout, Buffer]>([
    // Rows differing only past field 256: different fingerprints (no false duplicate).
    ['vitals, rows differing only in field 300', tail, bytesOf(tail, last(tail, 'a'), last(tail, 'b'), last(tail, 'a'))],
    ['vitals, rows differing only in field 257', tail, bytesOf(tail, (k) => (k === 256 ? 'a' : ''), (k) => (k === 256 ? 'b' : ''))],
    // The same row read by both paths (Unicode padding sends the second to the string path): one fingerprint.
    ['vitals, one row through each path', tail, bytesOf(tail, last(tail, 'a'), last(tail, '\u3000a'), last(tail, 'b'))],
    // Required columns past field 256.
    ['labs, required columns after 294 extras', head, bytesOf(head, last(head, 'a'), last(head, 'b'), last(head, '\u3000a'))],
  ])('%s', (_name, layout, bytes) => {
    compare(layout, bytes);
  });

  it.each([tail, head])('rows differing only past field 256 are not one row, read by the fast path (%#)', (layout) => {
    const spy = vi.spyOn(ChunkProcessor.prototype as unknown as { slowRecord: () => number }, 'slowRecord');
    try {
      const [got] = runChunks(contextFor(layout), [bytesOf(layout, last(layout, 'a'), last(layout, 'b'))]);
      expect(got.accepted).toHaveLength(2);
      expect(got.accepted[0].fp.join(':')).not.toBe(got.accepted[1].fp.join(':'));
      expect(spy).toHaveBeenCalledTimes(0);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('across chunks', () => {
  it('patients and values first seen in one chunk keep their keys in the next (published in between)', () => {
    const layout: Layout = { dataset: 'vitals', names: [...COLUMNS.vitals] };
    const ctx = contextFor(layout);
    const a = Buffer.from('H001,2024-03-15,P1,heart_rate,72,bpm\nH002,2024-03-15,P1,heart_rate,72,bpm\n');
    const b = Buffer.from('H001,2024-03-16,P1,heart_rate,72,bpm\nH002,2024-03-16,P9,heart_rate,72,bpm\n');
    const [ra, rb] = runChunks(ctx, [a, b]);
    const key = (h: string, p: string) => createHmac('sha256', KEY).update(`${h}|${p}`).digest('hex').slice(0, 32);
    expect(ra.accepted.map((r) => r.patientKey)).toEqual([key('H001', 'P1'), key('H002', 'P1')]);
    expect(rb.accepted.map((r) => r.patientKey)).toEqual([key('H001', 'P1'), key('H002', 'P9')]);
    // The second chunk brings only what the first did not publish.
    expect(rb.newPatients.count).toBe(1);
    expect(rb.newValues.count).toBe(0);
  });

  it('past its size limit the worker-local patient cache starts over in place, and every key stays right', () => {
    const layout: Layout = { dataset: 'vitals', names: [...COLUMNS.vitals] };
    const proc = new ChunkProcessor(contextFor(layout));
    // Never published: as with many chunks in flight, the worker keys every patient itself and caches it.
    const dicts = new Dictionaries(1024);
    const n = 40_000; // past the cache's limit (1 << 15 entries), so it starts over before the next chunk
    const chunkOf = (ids: number[]) => Buffer.from(ids.map((p) => `H001,2024-03-15,P${p},heart_rate,72,bpm\n`).join(''));
    const key = (p: number) => createHmac('sha256', KEY).update(`H001|P${p}`).digest('hex').slice(0, 32);
    const chunks = [
      Array.from({ length: n }, (_, i) => i),
      // Patients of the first chunk (cached before it started over), then new ones, then a repeat within the chunk.
      [...Array.from({ length: 2000 }, (_, i) => n - 1 - 17 * i), ...Array.from({ length: 100 }, (_, i) => n + i), 5],
      [7, n + 3, 7],
    ];
    chunks.forEach((ids, seq) => {
      const r = proc.run(chunkOf(ids), seq, dicts.state);
      const keys = Array.from(r.patient, (ref) => (ref >= PENDING ? wordsToHex(r.newPatients.payload, 4 * (ref - PENDING), 4) : 'published?'));
      expect(keys).toEqual(ids.map(key));
      expect(r.newPatients.count).toBe(new Set(ids).size);
    });
  });

  it('past its size limit the worker-local value cache starts over in place, and no value takes the shared id of one from before', () => {
    const layout: Layout = { dataset: 'vitals', names: [...COLUMNS.vitals] };
    // Distinct source texts past the cache's limit (1 << 15); `runChunks` publishes each chunk's new values before the next.
    const text = (i: number) => `${60 + (i % 100)}.${String(i).padStart(5, '0')}`;
    const chunkOf = (values: string[]) => Buffer.from(values.map((v, i) => `H001,2024-03-15,P${i % 50},heart_rate,${v},bpm\n`).join(''));
    const many = Array.from({ length: 40_000 }, (_, i) => text(i));
    const fresh = ['101.5', '99.25', '72.125', text(7)];
    // The second pass finds every value published and remembers its shared id; the third starts over and brings new ones.
    const [a, b, c] = runChunks(contextFor(layout), [chunkOf(many), chunkOf(many), chunkOf(fresh)]);
    expect(a.accepted.map((r) => r.sourceValue)).toEqual(many);
    expect(b.accepted.map((r) => r.sourceValue)).toEqual(many);
    expect(b.newValues.count).toBe(0);
    expect(c.accepted.map((r) => r.sourceValue)).toEqual(fresh);
    expect(c.newValues.count).toBe(3);
  });
});

describe('resultBuffers', () => {
  /** Every non-empty, non-shared buffer under an object, found by walking it (independently of the list in resultBuffers). */
  const walk = (x: unknown, out = new Set<ArrayBuffer>()): Set<ArrayBuffer> => {
    if (ArrayBuffer.isView(x)) {
      if (x.byteLength > 0 && !(x.buffer instanceof SharedArrayBuffer)) out.add(x.buffer as ArrayBuffer);
    } else if (x instanceof ArrayBuffer) {
      if (x.byteLength > 0) out.add(x);
    } else if (x !== null && typeof x === 'object') for (const v of Object.values(x)) walk(v, out);
    return out;
  };

  /** One vitals chunk through a fresh worker core, with fresh (unpublished) dictionaries. */
  const runOne = (text: string) => {
    const dicts = new Dictionaries(1024);
    const r = new ChunkProcessor(contextFor({ dataset: 'vitals', names: [...COLUMNS.vitals] })).run(Buffer.from(text), 0, dicts.state);
    return { r, dicts };
  };

  it("lists each buffer of a chunk result once: all that the worker transfers and the coordinator frees", () => {
    // Accepted rows, new patients and values, and rejects of several kinds: every buffer the result can carry.
    const { r } = runOne('H001,2024-03-15,P1,heart_rate,72,bpm\nH002,2024-03-15,P2,temperature,37.1,°C\nH001,2024-13-01,P3,heart_rate,72,bpm\nbad\n');
    expect(r.rejects.line.length).toBe(2);
    const listed = resultBuffers(r);
    expect(new Set(listed).size).toBe(listed.length);
    expect(new Set(listed)).toEqual(walk(r));
  });

  it('lists each buffer of an encode result once, the batch columns (sent back for reuse) among them', () => {
    const { r, dicts } = runOne('H001,2024-03-15,P1,heart_rate,72,bpm\nH001,2024-03-16,P2,temperature,37.1,°C\nH001,2024-03-17,P1,heart_rate,75,bpm\n');
    const ids = { patients: dicts.publishPatients(r.newPatients), values: dicts.publishValues(r.newValues) };
    const n = r.partStart[1];
    expect([r.parts.length, n]).toEqual([1, 3]);
    const batch: Batch = {
      hospital: 'H001',
      month: '2024-03',
      n,
      day: r.day.slice(0, n),
      code: r.code.slice(0, n),
      value: r.value.slice(0, n),
      ref: new Float64Array(0),
      patient: Uint32Array.from(r.patient.subarray(0, n), (ref) => resolve(ref, ids.patients)),
      srcValue: Uint32Array.from(r.srcValue.subarray(0, n), (ref) => resolve(ref, ids.values)),
      units: r.units,
    };
    const e = encodeBatch({ kind: 'encode', attempt: 0, dataset: 'vitals', batch, dicts: dicts.state });
    const listed = resultBuffers(e);
    expect(new Set(listed).size).toBe(listed.length);
    expect(new Set(listed)).toEqual(walk(e));
    for (const column of [batch.day, batch.code, batch.value, batch.patient, batch.srcValue]) expect(listed).toContain(column.buffer);
  });
});

