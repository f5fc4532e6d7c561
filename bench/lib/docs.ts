/**
 * docs/PERFORMANCE.md is shared by hand and by the runner: the method
 * section between the `bench:method` markers is hand-written and kept as
 * is; each run replaces only its own `bench:results:<rows>` section, so a
 * 10M run and an independent 2M rerun sit side by side, and the summary
 * table at the top is rebuilt from the headline data of every section.
 */
import { existsSync, readFileSync } from 'node:fs';
import { int, ratio } from './format.js';
import { table } from './markdown.js';
import type { Headline } from './report.js';

const METHOD = ['<!-- bench:method:start -->', '<!-- bench:method:end -->'] as const;
const SUMMARY = ['<!-- bench:summary:start -->', '<!-- bench:summary:end -->'] as const;
const RESULTS = /<!-- bench:results:(\d+):start -->\n?([\s\S]*?)\n?<!-- bench:results:\1:end -->/g;
const DATA = /<!-- bench:data (\{.*\}) -->/;

const DEFAULT_METHOD = `## Method

Written by \`npm run bench\`; see bench/README.md for what is measured and how.`;

function between(text: string, [start, end]: readonly [string, string]): string | null {
  const a = text.indexOf(start);
  const b = text.indexOf(end, a + start.length);
  return a === -1 || b === -1 ? null : text.slice(a + start.length, b).replace(/^\n/, '').replace(/\n$/, '');
}

/** The result sections of a document, by row count. */
export function resultSections(text: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const x of text.matchAll(RESULTS)) m.set(Number(x[1]), x[2]);
  return m;
}

function summaryTable(sections: Map<number, string>): string {
  const heads: Headline[] = [];
  for (const body of sections.values()) {
    const m = DATA.exec(body);
    if (m) heads.push(JSON.parse(m[1]) as Headline);
  }
  heads.sort((a, b) => b.rows - a.rows);
  if (heads.length === 0) return 'No run recorded yet: `npm run bench -- --rows 10000000`.';
  return table(
    ['rows', 'date', 'engine', 'engine rows/s', 'vs DuckDB', 'vs pandas + pandera', '2 vs 1 worker', 'all cores vs 1 core', 'peak RSS MB', 'load avg'],
    heads.map((h) => [
      int(h.rows),
      h.date.slice(0, 10),
      `\`${h.engine}\``,
      int(h.engineRowsPerS),
      ratio(h.vsDuckdb) + (h.vsDuckdbCpu ? ` (CPU ${ratio(h.vsDuckdbCpu)})` : ''),
      ratio(h.vsPandas) + (h.vsPandasCpu ? ` (CPU ${ratio(h.vsPandasCpu)})` : '') + (h.pandasRows !== null && h.pandasRows !== h.rows ? `, pandas at ${int(h.pandasRows)}` : ''),
      ratio(h.workerScaling),
      ratio(h.coreScaling ?? null),
      h.rssMB === null ? 'n/a' : int(h.rssMB),
      h.load,
    ]),
    ['r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
}

/**
 * The new document: `existing` with the section for `rows` replaced by
 * `body`. The method section comes from `existing`, else from
 * `methodSource` (the committed doc, for runs that write elsewhere).
 */
export function mergeDoc(existing: string, rows: number, body: string, methodSource: string | null = null): string {
  const method = between(existing, METHOD) ?? (methodSource !== null ? between(methodSource, METHOD) : null) ?? DEFAULT_METHOD;
  const sections = resultSections(existing);
  sections.set(rows, body);
  const ordered = [...sections.entries()].sort((a, b) => b[0] - a[0]);
  return [
    '# Performance',
    '',
    '<!-- Written by `npm run bench` (bench/run.ts). Edit by hand only between the bench:method markers; the rest is regenerated. -->',
    '',
    METHOD[0],
    method,
    METHOD[1],
    '',
    SUMMARY[0],
    '## Results at a glance',
    '',
    'One row per recorded run size; every ratio is engine throughput ÷ the other tool\'s, measured in the same run on the same input.',
    '',
    summaryTable(sections),
    SUMMARY[1],
    '',
    ...ordered.flatMap(([n, b]) => [`<!-- bench:results:${n}:start -->`, b, `<!-- bench:results:${n}:end -->`, '']),
  ].join('\n');
}

export const readIfExists = (path: string): string | null => (existsSync(path) ? readFileSync(path, 'utf8') : null);
