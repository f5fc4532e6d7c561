import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FingerprintSet } from '../src/merge/dedupe.js';

describe('FingerprintSet behaves as a set of fixed-width keys', () => {
  it.each([2, 4] as const)('width %i, against a Set of joined keys (small values force collisions and growth)', (width) => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: width, maxLength: width }), { maxLength: 400 }), (keys) => {
        const set = new FingerprintSet(width, 2);
        const ref = new Set<string>();
        for (const k of keys) {
          expect(set.add(k)).toBe(!ref.has(k.join(',')));
          ref.add(k.join(','));
        }
        expect(set.size).toBe(ref.size);
      }),
      { numRuns: 300 },
    );
  });

  it('reads keys at an offset in a larger array (row fingerprints are [hi, lo] pairs)', () => {
    const pairs = Uint32Array.from([1, 2, 3, 4, 1, 2, 0, 0, 0, 0]);
    const set = new FingerprintSet(2);
    expect([0, 2, 4, 6, 8].map((at) => set.add(pairs, at))).toEqual([true, true, false, true, false]);
    expect(set.size).toBe(3);
  });

  it('keeps full 32-bit words apart', () => {
    const set = new FingerprintSet(4);
    expect(set.add([0xffffffff, 0, 0, 1])).toBe(true);
    expect(set.add([0xffffffff, 0, 0, 2])).toBe(true);
    expect(set.add([0xffffffff, 0, 0, 1])).toBe(false);
  });
});

describe('add2 (the width-2 fast path) agrees with add', () => {
  it('on random pairs, zeros included', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })), { maxLength: 200 }), (pairs) => {
        const a = new FingerprintSet(2, 2);
        const b = new FingerprintSet(2, 2);
        for (const [hi, lo] of pairs) expect(a.add2(hi, lo)).toBe(b.add([hi, lo]));
        expect(a.size).toBe(b.size);
      }),
      { numRuns: 300 },
    );
  });
});

describe('idOf gives dense ids in insertion order', () => {
  it('against a Map of joined keys, through growth, zero key included', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }), { maxLength: 300 }), (keys) => {
        const set = new FingerprintSet(4, 2, true);
        const ref = new Map<string, number>();
        for (const k of keys) {
          const j = k.join(',');
          if (!ref.has(j)) ref.set(j, ref.size);
          expect(set.idOf(k)).toBe(ref.get(j));
        }
        expect(set.size).toBe(ref.size);
      }),
      { numRuns: 300 },
    );
  });
});
