/**
 * Dictionaries.publishPatients: each new patient gets the next dense number
 * of its own hospital (the bits n_patients counts), whatever the order in
 * which hospitals' patients arrive; a patient seen again keeps its entry.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Dictionaries } from '../src/merge/dicts.js';
import { hashBytes } from '../src/transform/bytetable.js';
import type { NewEntries } from '../src/types.js';

/** A chunk's new patients as a worker sends them (keys `hospital|patient`, 4 key words each). */
function entries(keys: string[]): NewEntries {
  const bytes = keys.map((k) => Buffer.from(k, 'latin1'));
  const pool = new Uint8Array(Buffer.concat(bytes));
  const ends = new Uint32Array(keys.length);
  const hashes = new Uint32Array(keys.length);
  let at = 0;
  bytes.forEach((b, i) => {
    hashes[i] = hashBytes(pool, at, at + b.length);
    at += b.length;
    ends[i] = at;
  });
  return { count: keys.length, pool, ends, hashes, payload: new Uint32Array(4 * keys.length) };
}

describe('Dictionaries.publishPatients', () => {
  it('numbers patients densely per hospital, across chunks and interleaved hospitals', () => {
    const hospital = fc.constantFrom('H001', 'H002', 'H10', 'H1');
    const key = fc.tuple(hospital, fc.integer({ min: 0, max: 30 })).map(([h, p]) => `${h}|P${p}`);
    fc.assert(
      fc.property(fc.array(fc.array(key, { maxLength: 20 }), { maxLength: 8 }), (chunks) => {
        const dicts = new Dictionaries(64);
        // The reference: first sight numbers a patient within its hospital.
        const dense = new Map<string, number>();
        const perHospital = new Map<string, number>();
        for (const chunk of chunks) {
          // A chunk lists each new patient once (the worker dedupes its own).
          const keys = [...new Set(chunk)];
          const ids = dicts.publishPatients(entries(keys));
          keys.forEach((k, i) => {
            const h = k.slice(0, k.indexOf('|'));
            if (!dense.has(k)) {
              dense.set(k, perHospital.get(h) ?? 0);
              perHospital.set(h, (perHospital.get(h) ?? 0) + 1);
            }
            expect(dicts.denseId(ids[i])).toBe(dense.get(k));
          });
        }
        for (const [h, n] of perHospital) expect(dicts.patientCount(h)).toBe(n);
      }),
      { numRuns: 300 },
    );
  });
});
