/**
 * Prometheus text exposition format (0.0.4) for plain metric families: the
 * push needs to render subsets of the registry (one per Pushgateway group),
 * which prom-client's own `metrics()` cannot do. Pure functions.
 */

export interface Sample {
  /** Full series name when it differs from the family (`_bucket`, `_sum`, `_count`). */
  readonly metricName?: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly values: readonly Sample[];
}

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Readonly<Record<string, string | number>>): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${escapeLabelValue(typeof v === 'number' ? formatValue(v) : v)}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Render families; families without samples are left out. */
export function renderFamilies(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (f.values.length === 0) continue;
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.values) {
      out.push(`${s.metricName ?? f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
