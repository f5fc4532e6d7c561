/**
 * The RLE / bit-packing hybrid encoding (src/sinks/pages.ts `writeHybrid`),
 * read back by a decoder written here from the Parquet format's description
 * (a varint header: low bit 1 = that many groups of 8 bit-packed values,
 * least significant bit first; low bit 0 = a run of header >> 1 copies of
 * one value in ceil(width / 8) little-endian bytes). Property: any values
 * that fit the width come back, in order, at any offset in the buffer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bytes, writeHybrid } from '../src/sinks/pages.js';

function decodeHybrid(buf: Uint8Array, from: number, to: number, width: number, n: number): number[] {
  const out: number[] = [];
  let at = from;
  const varint = () => {
    let x = 0;
    for (let shift = 0; ; shift += 7) {
      const b = buf[at++];
      x += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return x;
    }
  };
  while (at < to) {
    const header = varint();
    if (header % 2 === 1) {
      const count = ((header - 1) / 2) * 8;
      let bitPos = 0;
      for (let k = 0; k < count; k++) {
        let v = 0;
        for (let b = 0; b < width; b++, bitPos++) if (buf[at + (bitPos >> 3)] & (1 << (bitPos & 7))) v |= 1 << b;
        out.push(v >>> 0);
      }
      at += Math.ceil((count * width) / 8);
    } else {
      let v = 0;
      for (let b = 0; b < Math.ceil(width / 8); b++) v += buf[at++] * 256 ** b;
      for (let k = 0; k < header / 2; k++) out.push(v);
    }
  }
  expect(at).toBe(to);
  // Bit-packed groups are padded with zeros to 8 values; readers stop at n.
  expect(out.length).toBeGreaterThanOrEqual(n);
  expect(out.slice(n).every((v) => v === 0)).toBe(true);
  return out.slice(0, n);
}

describe('writeHybrid', () => {
  it('round-trips runs and scattered values at every width up to 24 bits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 24 }),
        // Segments: a value and how often it repeats (long runs become RLE runs, short ones bit-packed groups).
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 20 })), { maxLength: 40 }),
        fc.integer({ min: 0, max: 9 }),
        (width, segments, prefix) => {
          const values = segments.flatMap(([v, times]) => Array<number>(times).fill(width === 0 ? 0 : v % 2 ** width));
          const out = new Bytes(16);
          for (let k = 0; k < prefix; k++) out.u8(0xee);
          writeHybrid(out, Uint32Array.from(values), values.length, width);
          expect(out.buf.subarray(0, prefix).every((b) => b === 0xee)).toBe(true);
          expect(decodeHybrid(out.buf, prefix, out.length, width, values.length)).toEqual(values);
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each([
    // 100 equal values: header 100 << 1 = 200 (varint 0xc8 0x01), then the value in one byte.
    ['a long run', Array<number>(100).fill(5), 3, [0xc8, 0x01, 5]],
    // Exactly 8: still a run.
    ['a run of 8', Array<number>(8).fill(3), 2, [0x10, 3]],
    // 7 equal: one bit-packed group (header 1 << 1 | 1), 8 values of 2 bits, padded with a zero.
    ['7 equal values', Array<number>(7).fill(3), 2, [0x03, 0xff, 0x3f]],
    // A value wider than a byte in a run: two little-endian bytes.
    ['a wide run', Array<number>(9).fill(0x1234), 13, [0x12, 0x34, 0x12]],
  ])('writes %s as the format says', (_, values, width, bytes) => {
    const out = new Bytes(16);
    writeHybrid(out, Uint32Array.from(values), values.length, width);
    expect([...out.buf.subarray(0, out.length)]).toEqual(bytes);
  });
});
