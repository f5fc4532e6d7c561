/**
 * HeldRows: the duplicate filter's suspects, column-wise with their records
 * back to back, read back exactly as they were held, in order, however many
 * times its arrays grow.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HeldRows } from '../src/merge/held.js';

describe('HeldRows', () => {
  it('gives back every held row (partition, index, line, record bytes) in arrival order', () => {
    const partition = fc.constantFrom({ name: 'H001/2024-01' }, { name: 'H001/2024-02' }, { name: 'H002/2024-01' });
    const row = fc.record({ part: partition, index: fc.nat(), line: fc.integer({ min: 1, max: 2 ** 40 }), record: fc.uint8Array({ maxLength: 3000 }) });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 700 }), (rows) => {
        const held = new HeldRows<{ name: string }>();
        for (const r of rows) held.push(r.part, r.index, r.line, r.record);
        expect(held.length).toBe(rows.length);
        rows.forEach((r, s) => {
          const got = held.get(s);
          // The same partition object, not a copy.
          expect(got.part).toBe(r.part);
          expect({ index: got.index, line: got.line, record: [...got.record] }).toEqual({ index: r.index, line: r.line, record: [...r.record] });
        });
      }),
      { numRuns: 60 },
    );
  });
});
