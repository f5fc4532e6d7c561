import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { mayEndInUnicodeSpace, utf8SequenceLength } from '../src/rules/bytes.js';

/** Bytes on either side of the continuation range 0x80–0xBF (the second byte, whose range depends on the lead, is tried in full). */
const EDGES = [0x41, 0x7f, 0x80, 0xbf, 0xc0];

describe('utf8SequenceLength', () => {
  it('agrees with isUtf8 for every lead byte and second byte, the later bytes on the range edges', () => {
    const b = new Uint8Array(4);
    const wrong: string[] = [];
    let checked = 0;
    for (let lead = 0x80; lead <= 0xff; lead++)
      for (let second = 0; second <= 0xff; second++)
        for (const third of EDGES)
          for (const fourth of EDGES) {
            b[0] = lead;
            b[1] = second;
            b[2] = third;
            b[3] = fourth;
            // A lone byte >= 0x80 is never well-formed, so the shortest well-formed prefix is exactly one character.
            let expected = 0;
            for (let k = 4; k >= 2; k--) if (isUtf8(b.subarray(0, k))) expected = k;
            const got = [4, 3, 2, 1].map((end) => utf8SequenceLength(b, 0, end));
            // Cut short by the end of the data: no sequence runs past it.
            const want = [4, 3, 2, 1].map((end) => (expected <= end ? expected : 0));
            if (got.join() !== want.join() && wrong.length < 10) wrong.push(`${[lead, second, third, fourth].map((x) => x.toString(16))}: ${got} != ${want}`);
            checked++;
          }
    expect(wrong).toEqual([]);
    expect(checked).toBe(128 * 256 * EDGES.length ** 2);
  });

  it('reads a character in the middle of a buffer', () => {
    const b = Buffer.from('a°b€c😀', 'utf8');
    expect([1, 4, 8].map((i) => utf8SequenceLength(b, i, b.length))).toEqual([2, 3, 4]);
  });
});

describe('mayEndInUnicodeSpace', () => {
  const bytes = (s: string) => Buffer.from(s, 'utf8');
  const at = (s: string) => {
    const b = bytes(s);
    return mayEndInUnicodeSpace(b, 0, b.length);
  };

  it('is true whenever String.prototype.trim would remove a non-ASCII first or last character', () => {
    let spaces = 0;
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const ch = String.fromCodePoint(cp);
      if (ch.trim() !== '') continue;
      spaces++;
      expect(at(`${ch}x`), `U+${cp.toString(16)} first`).toBe(true);
      expect(at(`x${ch}`), `U+${cp.toString(16)} last`).toBe(true);
      expect(at(`${ch}`), `U+${cp.toString(16)} alone`).toBe(true);
    }
    // U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF
    expect(spaces).toBe(19);
  });

  it('lets the non-ASCII characters of real data through (the fast path keeps them)', () => {
    for (const s of ['°C', '°F', 'µmol/L', 'é', 'x😀', 'a\u00a0b', 'Zürich', 'Ω']) expect(at(s), s).toBe(false);
  });

  it('looks only at the range it is given', () => {
    const b = bytes('\u00a0ab\u3000');
    expect(mayEndInUnicodeSpace(b, 2, 4)).toBe(false);
    expect(mayEndInUnicodeSpace(b, 0, 4)).toBe(true);
    expect(mayEndInUnicodeSpace(b, 2, b.length)).toBe(true);
    expect(mayEndInUnicodeSpace(b, 2, 2)).toBe(false);
  });
});
