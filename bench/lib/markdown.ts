/** Markdown output: tables and ASCII bar charts that render anywhere. */

export type Align = 'l' | 'r';

/** A GitHub-flavoured markdown table; `align` per column (default: first left, rest right). */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[]): string {
  const a = align ?? headers.map((_, i) => (i === 0 ? 'l' : 'r'));
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const line = (cells: readonly string[]) => `| ${cells.map(esc).join(' | ')} |`;
  return [line(headers), `|${a.map((x) => (x === 'r' ? '---:' : ':---')).join('|')}|`, ...rows.map(line)].join('\n');
}

export interface Bar {
  readonly label: string;
  readonly value: number;
  /** Shown after the bar instead of the bare value. */
  readonly text?: string;
}

/** Horizontal ASCII bars scaled to the largest value, in a fenced block. */
export function asciiBars(bars: readonly Bar[], width = 40): string {
  const max = Math.max(...bars.map((b) => b.value), 1e-12);
  const labelWidth = Math.max(...bars.map((b) => b.label.length));
  const lines = bars.map((b) => {
    const n = b.value <= 0 ? 0 : Math.max(1, Math.round((b.value / max) * width));
    return `${b.label.padEnd(labelWidth)}  ${'█'.repeat(n).padEnd(width)}  ${b.text ?? String(b.value)}`;
  });
  return ['```text', ...lines, '```'].join('\n');
}
