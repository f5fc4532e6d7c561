/**
 * A dependency-free SVG horizontal bar chart: enough for throughput by
 * worker count, peak RSS by input size and the stage breakdown, with an
 * optional vertical reference line (a target, or the ideal speed-up).
 */
import type { Bar } from './markdown.js';

export interface BarChart {
  readonly title: string;
  /** Axis caption, e.g. "rows/s" or "MiB". */
  readonly unit: string;
  readonly bars: readonly Bar[];
  readonly reference?: { readonly value: number; readonly label: string };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Renders the chart as a standalone SVG document. */
export function barChartSvg(c: BarChart): string {
  const labelW = Math.max(90, 7.2 * Math.max(...c.bars.map((b) => b.label.length)) + 16);
  const plotW = 420;
  const textW = 170;
  const barH = 22;
  const gap = 8;
  const top = 54;
  const width = Math.ceil(labelW + plotW + textW);
  const height = top + c.bars.length * (barH + gap) + 34;
  const max = Math.max(...c.bars.map((b) => b.value), c.reference?.value ?? 0, 1e-12) * 1.05;
  const x = (v: number) => labelW + (v / max) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${labelW}" y="22" font-size="14" font-weight="bold">${esc(c.title)}</text>`,
  ];
  c.bars.forEach((b, i) => {
    const y = top + i * (barH + gap);
    const w = Math.max(0, x(b.value) - labelW);
    out.push(
      `<text x="${labelW - 8}" y="${y + barH / 2 + 4}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="#4878a8"/>`,
      `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + barH / 2 + 4}">${esc(b.text ?? String(b.value))}</text>`,
    );
  });
  const axisY = top + c.bars.length * (barH + gap);
  out.push(`<line x1="${labelW}" y1="${top - 6}" x2="${labelW}" y2="${axisY}" stroke="#333"/>`);
  out.push(`<line x1="${labelW}" y1="${axisY}" x2="${labelW + plotW}" y2="${axisY}" stroke="#ccc"/>`);
  out.push(`<text x="${labelW}" y="${axisY + 18}" text-anchor="middle" fill="#555">0</text>`);
  out.push(`<text x="${labelW + plotW}" y="${axisY + 18}" text-anchor="end" fill="#555">${esc(c.unit)}</text>`);
  if (c.reference) {
    const rx = x(c.reference.value).toFixed(1);
    out.push(
      `<line x1="${rx}" y1="${top - 6}" x2="${rx}" y2="${axisY}" stroke="#c0392b" stroke-dasharray="5,4"/>`,
      `<text x="${rx}" y="${top - 12}" text-anchor="middle" fill="#c0392b">${esc(c.reference.label)}</text>`,
    );
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
