/**
 * ByteTable (src/transform/bytetable.ts), the byte-string interning table
 * behind the workers' caches and the shared dictionaries: against a Map
 * over the same keys, through growth and `clear`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteTable, hashBytes } from '../src/transform/bytetable.js';

const utf8 = new TextEncoder();

describe('ByteTable', () => {
  it('interns like a Map, through growth and clear; entries added after a clear start from a zero payload', () => {
    // Operations: intern a key (and stamp its payload), or clear the table.
    const op = fc.oneof({ weight: 20, arbitrary: fc.string({ maxLength: 6 }).map((k) => ({ key: k })) }, { weight: 1, arbitrary: fc.constant({ key: null }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const t = new ByteTable(2, false, 4); // small, so it grows
        const ref = new Map<string, number>(); // key -> id
        let stamp = 0;
        for (const { key } of ops) {
          if (key === null) {
            t.clear();
            ref.clear();
            expect(t.size).toBe(0);
            continue;
          }
          const b = utf8.encode(key);
          const id = t.intern(b, 0, b.length);
          const known = ref.get(key);
          expect(t.isNew).toBe(known === undefined);
          if (known === undefined) {
            expect(id).toBe(ref.size);
            // A new entry's payload is zero, whatever an entry of the same id held before a clear.
            expect([t.payload[2 * id], t.payload[2 * id + 1]]).toEqual([0, 0]);
            ref.set(key, id);
            t.payload[2 * id] = ++stamp;
            t.payload[2 * id + 1] = stamp;
          } else expect(id).toBe(known);
          expect(t.find(b, 0, b.length, hashBytes(b, 0, b.length))).toBe(id);
          expect(t.keyString(id)).toBe(key);
        }
        expect(t.size).toBe(ref.size);
      }),
      { numRuns: 300 },
    );
  });
});
