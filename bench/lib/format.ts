/** Number formatting shared by the markdown tables and the charts. */

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Seconds with 2 significant decimals for short runs, 1 for long ones. */
export const secs = (ms: number): string => (ms < 10_000 ? (ms / 1000).toFixed(2) : (ms / 1000).toFixed(1));

/** Mebibytes, no decimals. */
export const mib = (bytes: number | null): string => (bytes === null ? 'n/a' : `${Math.round(bytes / 2 ** 20)}`);

export const ratio = (x: number | null): string => (x === null || !Number.isFinite(x) ? 'n/a' : `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×`);

export const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

/** Compact row counts for labels: 20k, 1M, 2.5M. */
export function rowsLabel(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** Bytes as KiB/MiB for chunk sizes. */
export function bytesLabel(n: number): string {
  if (n >= 2 ** 20 && n % 2 ** 20 === 0) return `${n / 2 ** 20} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The index of the median item of a non-empty list by `by` (the lower middle for an even count): one real item, not an average. */
export function medianIndex<T>(xs: readonly T[], by: (x: T, i: number) => number): number {
  const order = xs.map((x, i) => ({ i, v: by(x, i) })).sort((a, b) => a.v - b.v);
  return order[(order.length - 1) >> 1].i;
}
