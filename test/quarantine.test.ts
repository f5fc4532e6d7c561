/**
 * The quarantine's two halves: a worker packs its chunk's rejects
 * (RejectList), the coordinator writes them as bytes (QuarantineFile). Both
 * checked against text built independently: what unpacks is what was
 * pushed, and the file is the header then one CSV row per reject, whatever
 * the rows' sizes (rows longer than the write buffer included).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { csvField } from '../src/parse/csv.js';
import { QuarantineFile, RejectList, rejectCells, unpackRejects } from '../src/sinks/quarantine.js';

const dir = mkdtempSync(join(tmpdir(), 'hcp-quarantine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const COLUMNS = ['hospital_id', 'measurement_date', 'patient_id', 'vital_type', 'value', 'unit'];
const reject = fc.record({
  line: fc.nat({ max: 2 ** 31 }),
  codes: fc.constantFrom('value.invalid', 'date.invalid;unit.missing', 'row.field_count'),
  hospital: fc.constantFrom('H001', 'H002', '__invalid__'),
  // Fields with commas, quotes, newlines and non-ASCII text; now and then one longer than the file's 64 KiB buffer.
  fields: fc.array(fc.oneof({ weight: 20, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom('a', ',', '"', 'é', '\n'), fc.nat({ max: 9 })).map(([c, k]) => c.repeat(70_000 + k)) }), { maxLength: 7 }),
  raw: fc.string({ maxLength: 20 }),
});

describe('RejectList', () => {
  it('unpacks to the rows pushed, in order', () => {
    fc.assert(
      fc.property(fc.array(reject, { maxLength: 40 }), (rows) => {
        const list = new RejectList();
        for (const r of rows) list.push(r.line, r.codes, r.hospital, rejectCells(r.codes, r.fields, COLUMNS.length, r.raw));
        expect(list.length).toBe(rows.length);
        expect(unpackRejects(list.pack())).toEqual(rows.map((r) => ({ line: r.line, codes: r.codes, hospital: r.hospital, cells: rejectCells(r.codes, r.fields, COLUMNS.length, r.raw) })));
      }),
      { numRuns: 60 },
    );
  });
});

describe('QuarantineFile', () => {
  it('writes the header, then each row (packed by a worker, or formatted here) as CSV', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(reject, fc.boolean()), { maxLength: 30 }), (rows) => {
        const path = join(dir, `rejects-${files++}.csv`);
        const file = new QuarantineFile(path, 'landing/vitals 2024.csv', COLUMNS);
        const packed = new RejectList();
        for (const [r] of rows) packed.push(r.line, r.codes, r.hospital, rejectCells(r.codes, r.fields, COLUMNS.length, r.raw));
        const p = packed.pack();
        const cells = Buffer.from(p.cells.buffer, p.cells.byteOffset, p.cells.byteLength);
        rows.forEach(([r, viaBytes], i) => {
          if (viaBytes) file.addCellBytes(r.line, cells, i === 0 ? 0 : p.cellEnds[i - 1], p.cellEnds[i]);
          else file.add(r.line, r.codes, r.fields, r.raw);
        });
        file.close();
        const expected = [
          ['source_file', 'line_number', 'reason_codes', ...COLUMNS, 'raw_record'].join(','),
          ...rows.map(([r]) => [csvField('landing/vitals 2024.csv'), String(r.line), csvField(r.codes), ...COLUMNS.map((_, k) => csvField(r.fields[k] ?? '')), csvField(r.raw)].join(',')),
        ];
        expect(readFileSync(path, 'utf8')).toBe(expected.join('\n') + '\n');
        expect(file.rows).toBe(rows.length);
      }),
      { numRuns: 40 },
    );
  });
});
