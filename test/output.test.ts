import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AcceptedRows } from '../src/transform/output.js';

interface Row {
  part: number;
  day: number;
  code: number;
  value: number;
  ref: [number, number];
  patient: number;
  src: number;
  fp: [number, number];
  pos: [number, number];
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const rowOf = (parts: number) =>
  fc.record({
    part: fc.integer({ min: 0, max: parts - 1 }),
    day: fc.integer({ min: -30000, max: 30000 }),
    code: u32,
    value: fc.double({ noNaN: true }),
    ref: fc.tuple(fc.double({ noNaN: true }), fc.double({ noNaN: true })),
    patient: u32,
    src: u32,
    fp: fc.tuple(u32, u32),
    pos: fc.tuple(u32, u32),
  });

function collect(rows: readonly Row[], labs: boolean): AcceptedRows {
  const out = new AcceptedRows(labs);
  for (const r of rows) {
    const i = out.next();
    out.part[i] = r.part;
    out.day[i] = r.day;
    out.code[i] = r.code;
    out.value[i] = r.value;
    if (labs) [out.ref[2 * i], out.ref[2 * i + 1]] = r.ref;
    out.patient[i] = r.patient;
    out.srcValue[i] = r.src;
    [out.fp[2 * i], out.fp[2 * i + 1]] = r.fp;
    [out.pos[2 * i], out.pos[2 * i + 1]] = r.pos;
  }
  return out;
}

/** What pack must give, computed directly: groups in rank order, input order within each. */
function expected(rows: readonly Row[], rank: readonly number[], labs: boolean) {
  const order = rows.map((r, i) => ({ r, i })).sort((x, y) => rank[x.r.part] - rank[y.r.part] || x.i - y.i).map((x) => x.r);
  const partStart = [0];
  for (let k = 0; k < rank.length; k++) partStart.push(partStart[k] + rows.filter((r) => rank[r.part] === k).length);
  return {
    partStart,
    day: order.map((r) => r.day),
    code: order.map((r) => r.code),
    value: order.map((r) => r.value),
    ref: labs ? order.flatMap((r) => r.ref) : [],
    patient: order.map((r) => r.patient),
    srcValue: order.map((r) => r.src),
    fp: order.flatMap((r) => r.fp),
    pos: order.flatMap((r) => r.pos),
  };
}

const plain = (p: ReturnType<AcceptedRows['pack']>) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Array.from(v as ArrayLike<number>)]));

describe('AcceptedRows.pack', () => {
  it('groups rows by partition rank, stable, into one buffer; a spare buffer, however dirty, gives the same columns', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((parts) => fc.tuple(fc.constant(parts), fc.array(rowOf(parts), { maxLength: 3000 }), fc.shuffledSubarray([...Array(parts).keys()], { minLength: parts, maxLength: parts }))),
        fc.boolean(),
        fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 1 << 18 })),
        ([parts, rows, order], labs, spareBytes) => {
          const rank = new Array<number>(parts);
          order.forEach((p, k) => (rank[p] = k));
          const want = expected(rows, rank, labs);
          const spare = spareBytes === null ? null : new Uint8Array(spareBytes).fill(0xa5).buffer;
          const packed = collect(rows, labs).pack(parts, Uint32Array.from(rank), spare);
          expect(plain(packed)).toEqual(want);
          // Every column is a view of one buffer: the spare when it was big enough.
          const buffers = new Set(Object.values(packed).map((a) => a.buffer));
          expect(buffers.size).toBe(1);
          const bytes = Object.values(packed).reduce((n, a) => n + a.byteLength, 0);
          const used = [...buffers][0];
          if (spare !== null && spare.byteLength >= bytes) expect(used).toBe(spare);
          else expect(used).not.toBe(spare);
          expect(used.byteLength).toBeGreaterThanOrEqual(bytes);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('leaves the collector empty for the next chunk, and packs again into the buffer it gave back', () => {
    const rows = (n: number, part: number): Row[] =>
      Array.from({ length: n }, (_, i) => ({ part, day: i, code: i, value: i / 2, ref: [i, -i], patient: i, src: i, fp: [i, ~i >>> 0], pos: [i, i + 1] }));
    const first = collect(rows(100, 0), false).pack(1, Uint32Array.of(0));
    const again = collect(rows(60, 0), false);
    const second = again.pack(1, Uint32Array.of(0), first.value.buffer as ArrayBuffer);
    expect(second.value.buffer).toBe(first.value.buffer);
    expect(plain(second)).toEqual(expected(rows(60, 0), [0], false));
    expect(again.n).toBe(0);
  });
});
