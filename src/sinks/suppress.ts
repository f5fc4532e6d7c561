/**
 * Disclosure control for the public statistics export: which values of `monthly_<dataset>_public.csv` are
 * blanked. Pure: rows in, rows out, in the same order.
 *
 * Primary suppression (SPEC §4): a cell with fewer than `minCell` patients keeps only `n_patients`.
 *
 * Complementary suppression (a departure from SPEC, README "Where this departs from SPEC.md"): the `ALL` row of a
 * (dataset, month, measure) is the sum of its hospital cells, so `ALL` minus the visible cells gives the blanked
 * cells' combined `n`, `n × mean`, sum of squares (from `stddev`), `n_low` and `n_high`. Within each group:
 *
 * 1. If hospital cells are blanked and together hold fewer than `minCell` patients, the next smallest visible
 *    cells (fewest patients, then hospital ID) are blanked too until they hold at least `minCell` — unless that
 *    would blank every hospital cell of the group: then `ALL`'s values are blanked instead (one row lost either
 *    way, and the hospital figures are kept). What subtraction gives is then an aggregate of `minCell` patients
 *    or more, as safe as any published cell.
 * 2. If hospital cells are blanked and `ALL` is kept, `ALL`'s `min` (`max`) is blanked unless a visible cell has
 *    the same `min` (`max`): otherwise it is one patient's exact value from a blanked cell, which no count
 *    threshold protects; when a visible cell has it, it is public already. A quantile of `ALL` equal to a
 *    blanked extreme is blanked too (a small merged sketch's p05/p99 are its extremes).
 *
 * `n_patients` is never blanked: SPEC publishes it for every cell, so `ALL` minus the visible cells only gives
 * what is already published.
 */
import { ALL_HOSPITALS } from '../rules/fields.js';
import type { StatRow } from './stats.js';

/** The columns the public export may blank: every number but `n_patients`. */
export const SUPPRESSIBLE = ['n', 'mean', 'stddev', 'min', 'max', 'p05', 'p25', 'p50', 'p75', 'p95', 'p99', 'n_low', 'n_high'] as const;
type Suppressible = (typeof SUPPRESSIBLE)[number];
const QUANTILE_COLS = ['p05', 'p25', 'p50', 'p75', 'p95', 'p99'] as const;

/** A statistics row as published: any suppressible value may be null (blank). */
export type PublicStatRow = Omit<StatRow, Suppressible> & { [K in Suppressible]: number | null };

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The public export's rows: primary small-cell suppression plus complementary suppression (module comment).
 * Deterministic: the result depends on the rows' values, not their order.
 */
export function suppressSmallCells(rows: readonly StatRow[], minCell: number): PublicStatRow[] {
  const blank = new Map<number, readonly Suppressible[]>();
  for (const idx of groups(rows).values()) {
    const all = idx.find((i) => rows[i].hospital_id === ALL_HOSPITALS);
    const cells = idx.filter((i) => i !== all);
    for (const i of idx) if (rows[i].n_patients < minCell) blank.set(i, SUPPRESSIBLE);
    const hidden = cells.filter((i) => blank.has(i));
    if (all === undefined || blank.has(all) || hidden.length === 0) continue;
    let total = hidden.reduce((a, i) => a + rows[i].n_patients, 0);
    if (total < minCell) {
      const visible = cells.filter((i) => !blank.has(i)).sort((a, b) => rows[a].n_patients - rows[b].n_patients || cmp(rows[a].hospital_id, rows[b].hospital_id));
      const extra: number[] = [];
      for (const i of visible) {
        if (total >= minCell) break;
        extra.push(i);
        total += rows[i].n_patients;
      }
      if (extra.length === visible.length) {
        blank.set(all, SUPPRESSIBLE);
        continue;
      }
      for (const i of extra) blank.set(i, SUPPRESSIBLE);
    }
    const cols = extremes(rows, all, cells.filter((i) => !blank.has(i)));
    if (cols.length) blank.set(all, cols);
  }
  return rows.map((r, i) => {
    const cols = blank.get(i);
    if (!cols) return r;
    const out: PublicStatRow = { ...r };
    for (const c of cols) out[c] = null;
    return out;
  });
}

/** Row indices by (dataset, month, measure), in first-seen order. */
function groups(rows: readonly StatRow[]): Map<string, number[]> {
  const by = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const k = `${r.dataset}\u0000${r.month}\u0000${r.measure}`;
    const g = by.get(k);
    if (g) g.push(i);
    else by.set(k, [i]);
  });
  return by;
}

/** `ALL`'s columns that show an extreme no visible cell has (rule 2). */
function extremes(rows: readonly StatRow[], all: number, visible: number[]): Suppressible[] {
  const a = rows[all];
  const cols: Suppressible[] = [];
  for (const ext of ['min', 'max'] as const) {
    const v = a[ext];
    if (v === null || visible.some((i) => rows[i][ext] === v)) continue;
    cols.push(ext);
    for (const q of QUANTILE_COLS) if (a[q] === v && !cols.includes(q)) cols.push(q);
  }
  return cols;
}
