/**
 * The public statistics export (`statsCsv` with a --min-cell): primary small-cell suppression as SPEC §4 says,
 * plus complementary suppression, so that no blanked cell can be recovered as ALL minus the visible cells.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STAT_COLUMNS, statsCsv, type StatRow } from '../src/sinks/stats.js';
import { expectSafePublicStats, PUBLIC_BLANKABLE } from './helpers.js';

const VALUES = PUBLIC_BLANKABLE as readonly (keyof StatRow)[];
type Col = (typeof STAT_COLUMNS)[number];

interface Cell {
  h: string;
  np: number;
  min?: number;
  max?: number;
}

/** A hospital cell: values derived from its patient count unless given (min 100 − np, max 100 + np: the largest cell holds both extremes). */
function hospital(c: Cell, month = '2024-01', measure = 'heart_rate'): StatRow {
  const n = c.np * 2;
  return {
    dataset: 'vitals', hospital_id: c.h, month, measure, unit: 'bpm', n, n_patients: c.np,
    mean: 80 + c.np / 8, stddev: 3 + c.np / 16, min: c.min ?? 100 - c.np, max: c.max ?? 100 + c.np,
    p05: 81.5, p25: 82.5, p50: 83.5, p75: 84.5, p95: 85.5, p99: 86.5, n_low: c.np % 3, n_high: c.np % 5,
  };
}

/** The ALL row over some hospital cells, as the sketch merge makes it (sums; mean weighted; extremes of extremes). */
function rollup(cells: StatRow[], quantiles: Partial<StatRow> = {}): StatRow {
  const sum = (k: 'n' | 'n_patients' | 'n_low' | 'n_high') => cells.reduce((a, r) => a + (r[k] as number), 0);
  const n = sum('n');
  return {
    ...cells[0], hospital_id: 'ALL', n, n_patients: sum('n_patients'),
    mean: cells.reduce((a, r) => a + r.n * (r.mean as number), 0) / n, stddev: 7.25,
    min: Math.min(...cells.map((r) => r.min as number)), max: Math.max(...cells.map((r) => r.max as number)),
    p05: 90.25, p25: 91.25, p50: 92.25, p75: 93.25, p95: 94.25, p99: 95.25, n_low: sum('n_low'), n_high: sum('n_high'),
    ...quantiles,
  };
}

function group(cells: Cell[], all: Partial<StatRow> = {}): StatRow[] {
  const rows = cells.map((c) => hospital(c));
  return [...rows, rollup(rows, all)];
}

/** The public CSV read back: one record of strings per row, by hospital. */
function publicRows(rows: StatRow[], minCell: number | null): Record<string, string>[] {
  const [header, ...lines] = statsCsv(rows, minCell).trimEnd().split('\n');
  const cols = header.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
}

const text = (v: unknown) => (v === null ? '' : String(v));

/** Which hospitals' cells are blanked, and which of ALL's columns. */
function blanked(rows: StatRow[], minCell: number) {
  const pub = publicRows(rows, minCell);
  const cells: string[] = [];
  let all: string[] = [];
  pub.forEach((p, i) => {
    const full = rows[i];
    for (const c of STAT_COLUMNS) if (p[c] !== '') expect(p[c], `${full.hospital_id} ${c}`).toBe(text(full[c as Col]));
    expect(p.n_patients).toBe(String(full.n_patients));
    const gone = VALUES.filter((c) => p[c] === '' && full[c] !== null);
    if (full.hospital_id === 'ALL') all = gone;
    else if (gone.length) {
      expect(gone, `${full.hospital_id}: all values or none`).toEqual([...VALUES]);
      cells.push(full.hospital_id);
    }
  });
  return { cells, all: all.length === VALUES.length ? 'all' : all };
}

describe('public export: primary and complementary suppression (min-cell 11)', () => {
  it.each<[string, Cell[], Partial<StatRow>, string[], string | string[]]>([
    // name, hospital cells, ALL overrides, hospitals blanked, ALL columns blanked
    ['nothing small: nothing blanked', [{ h: 'A', np: 12 }, { h: 'B', np: 30 }], {}, [], []],
    ['one small cell among several: the next smallest goes too', [{ h: 'A', np: 3 }, { h: 'B', np: 20 }, { h: 'C', np: 30 }, { h: 'D', np: 40 }], {}, ['A', 'B'], []],
    ['two small cells with fewer than 11 patients together: a third goes', [{ h: 'A', np: 3 }, { h: 'B', np: 4 }, { h: 'C', np: 20 }, { h: 'D', np: 30 }], {}, ['A', 'B', 'C'], []],
    ['two small cells with 11 or more patients together: enough as they are', [{ h: 'A', np: 5 }, { h: 'B', np: 8 }, { h: 'C', np: 20 }], {}, ['A', 'B'], []],
    ['complementary cells smallest first, not the largest', [{ h: 'A', np: 2 }, { h: 'B', np: 3 }, { h: 'E', np: 12 }, { h: 'D', np: 13 }, { h: 'C', np: 60 }], {}, ['A', 'B', 'E'], []],
    ['equal sizes: the first hospital ID goes', [{ h: 'A', np: 3 }, { h: 'C', np: 20 }, { h: 'B', np: 20 }, { h: 'D', np: 25 }], {}, ['A', 'B'], []],
    ['one hospital, small: ALL is the same cell, blanked', [{ h: 'A', np: 3 }], {}, ['A'], 'all'],
    ['one hospital, large', [{ h: 'A', np: 30 }], {}, [], []],
    ['two hospitals, one small: ALL blanked, the large one kept', [{ h: 'A', np: 3 }, { h: 'B', np: 30 }], {}, ['A'], 'all'],
    ['two hospitals, both small, fewer than 11 together: ALL small too', [{ h: 'A', np: 4 }, { h: 'B', np: 5 }], {}, ['A', 'B'], 'all'],
    ['two hospitals, both small, 11 or more together: ALL kept but its extremes', [{ h: 'A', np: 5 }, { h: 'B', np: 7 }], {}, ['A', 'B'], ['min', 'max']],
    ['small cells that only every hospital would cover: ALL blanked instead', [{ h: 'A', np: 3 }, { h: 'B', np: 5 }, { h: 'C', np: 60 }], {}, ['A', 'B'], 'all'],
    ["ALL's extremes from a blanked cell are blanked", [{ h: 'A', np: 3, min: 20, max: 250 }, { h: 'B', np: 20 }, { h: 'C', np: 30 }], {}, ['A', 'B'], ['min', 'max']],
    ["ALL's extremes equal to a visible cell's are kept", [{ h: 'A', np: 3, min: 70, max: 130 }, { h: 'B', np: 20 }, { h: 'C', np: 30 }], {}, ['A', 'B'], []],
    ["a quantile of ALL equal to a blanked extreme is blanked too", [{ h: 'A', np: 3, max: 250 }, { h: 'B', np: 20 }, { h: 'C', np: 30 }], { p99: 250, p05: 70 }, ['A', 'B'], ['max', 'p99']],
  ])('%s', (_name, cells, all, hospitals, allCols) => {
    const rows = group(cells, all);
    const got = blanked(rows, 11);
    expect(got.cells.sort()).toEqual(hospitals);
    expect(got.all).toEqual(allCols);
  });

  it('groups are suppressed independently, rows stay in their order', () => {
    const a = [{ h: 'A', np: 3 }, { h: 'B', np: 20 }, { h: 'C', np: 30 }].map((c) => hospital(c, '2024-01', 'heart_rate'));
    const b = [{ h: 'A', np: 30 }, { h: 'B', np: 20 }, { h: 'C', np: 30 }].map((c) => hospital(c, '2024-01', 'temperature'));
    const rows = [...a, rollup(a), ...b, rollup(b)];
    const pub = publicRows(rows, 11);
    expect(pub.map((p) => `${p.measure} ${p.hospital_id} ${p.n === '' ? '-' : p.n}`)).toEqual([
      'heart_rate A -', 'heart_rate B -', 'heart_rate C 60', 'heart_rate ALL 106',
      'temperature A 60', 'temperature B 40', 'temperature C 60', 'temperature ALL 160',
    ]);
  });

  it('--min-cell 0 blanks nothing, and the full CSV (no min-cell) is every value as it is', () => {
    const rows = group([{ h: 'A', np: 1 }, { h: 'B', np: 30 }]);
    expect(statsCsv(rows, 0)).toBe(statsCsv(rows, null));
    expect(publicRows(rows, null)).toEqual(rows.map((r) => Object.fromEntries(STAT_COLUMNS.map((c) => [c, text(r[c])]))));
  });

  /** Random groups: 1–8 hospitals, small and large cells, extremes drawn from a few values so that they tie. */
  const groups = fc
    .tuple(
      fc.uniqueArray(fc.constantFrom('H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'H7', 'H8'), { minLength: 1, maxLength: 8 }),
      fc.array(fc.record({ np: fc.integer({ min: 1, max: 40 }), min: fc.integer({ min: 60, max: 64 }), max: fc.integer({ min: 96, max: 100 }) }), { minLength: 8, maxLength: 8 }),
      fc.integer({ min: 0, max: 25 }),
      fc.boolean(),
    )
    .map(([hs, vals, minCell, extremeQuantiles]) => {
      const rows = hs.map((h, i) => hospital({ h, ...vals[i] }));
      const all = rollup(rows);
      // Small merged sketches have their extremes as quantiles (exact histograms).
      if (extremeQuantiles) Object.assign(all, { p05: all.min, p99: all.max });
      return { rows: [...rows, all], minCell };
    });

  it('property: no blanked cell can be recovered as ALL minus the visible cells', () => {
    fc.assert(
      fc.property(groups, ({ rows, minCell }) => {
        expectSafePublicStats(publicRows(rows, null), publicRows(rows, minCell), minCell);
      }),
      { numRuns: 500 },
    );
  });

  it('property: deterministic, whatever the order of the hospital rows', () => {
    fc.assert(
      fc.property(groups, fc.integer({ min: 0, max: 1000 }), ({ rows, minCell }, seed) => {
        const cells = rows.slice(0, -1);
        const shuffled = cells.map((r, i) => ({ r, k: (i * 7919 + seed) % 101 })).sort((a, b) => a.k - b.k).map((x) => x.r);
        const byHospital = (rs: StatRow[]) => {
          const pub = publicRows(rs, minCell);
          return Object.fromEntries(pub.map((p) => [p.hospital_id, p]));
        };
        expect(byHospital([...shuffled, rows[rows.length - 1]])).toEqual(byHospital(rows));
      }),
      { numRuns: 200 },
    );
  });
});
