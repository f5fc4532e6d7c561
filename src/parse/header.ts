/**
 * The header: columns are matched by name (trimmed, case-insensitive) in any
 * order; extras are ignored with a warning; a missing required column is a
 * file-level error (SPEC §1).
 */
import { isUtf8 } from 'node:buffer';
import { PipelineError } from '../errors.js';
import { COLUMNS, MEASURES, type Dataset } from '../registry.js';
import { parsedRecordEnd, parseRecords, Problem } from './csv.js';

const BOM = [0xef, 0xbb, 0xbf];
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

export interface Header {
  /** Column names as read (trimmed, BOM removed), in file order. */
  readonly names: readonly string[];
  /** For each required column (COLUMNS order), its index in the file. */
  readonly index: readonly number[];
  readonly extras: readonly string[];
  /** Byte offset where data starts (after the header record). */
  readonly dataOffset: number;
  /** Physical lines the header occupies (1 unless it has quoted newlines). */
  readonly lines: number;
}

export function bomLength(buf: Buffer): number {
  return buf.length >= 3 && buf[0] === BOM[0] && buf[1] === BOM[1] && buf[2] === BOM[2] ? 3 : 0;
}

/**
 * Reads the header from the first bytes of a file. `head` must hold the whole
 * header record (or the whole file when it is shorter). Returns null for an
 * empty file.
 */
export function parseHeader(dataset: Dataset, head: Buffer, file: string, atEof: boolean): Header | null {
  const start = bomLength(head);
  // Nothing but line ends (an export of no rows that wrote a newline, `\n` or `\r\n`): as empty as a 0-byte file.
  if (atEof && head.subarray(start).every((b) => b === LF || b === CR)) return null;
  // The header ends where the parser ends its first record, as the cutter cuts: by quote parity, a stray
  // quote (`no"te`) ran the header on into the rows, which were then lost or read as column names.
  const end = parsedRecordEnd(head, start, head.length);
  // A record that reaches the end of `head` without a LF may go on past it (a LF there inside an open
  // quote is the parser's `unterminated_quote`, rejected below).
  if (!atEof && head[end - 1] !== LF) {
    throw new PipelineError('HCP_ERR_BAD_HEADER', 'Header record is too long or has an unclosed quote', { file, line: 1 });
  }
  const bytes = head.subarray(start, end);
  if (bytes.includes(0) || !isUtf8(bytes)) {
    throw new PipelineError('HCP_ERR_NOT_CSV', 'The header is not UTF-8 text (binary file?)', { file, line: 1 });
  }
  // A CR alone outside quotes (classic Mac line ends): SPEC §1 allows LF or CRLF. Read as one long header, the
  // whole file became column names, and with an extra column in it passed as a header-only file, every row lost.
  let quoted = false;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === QUOTE) quoted = !quoted;
    else if (bytes[i] === CR && !quoted && bytes[i + 1] !== LF && !(atEof && i === bytes.length - 1)) {
      throw new PipelineError('HCP_ERR_BAD_HEADER', 'The header line ends in a CR alone: lines must end in LF or CRLF', { file, line: 1 });
    }
  }
  let names: string[] = [];
  let problem = Problem.None;
  const { lines } = parseRecords(head, start, end, (r) => {
    names = r.fields.map((f) => f.trim());
    problem = r.problem;
  });
  if (problem !== Problem.None) {
    throw new PipelineError('HCP_ERR_BAD_HEADER', 'The header has malformed quoting', { file, line: 1 });
  }
  const lower = names.map((n) => n.toLowerCase());
  const required = COLUMNS[dataset];
  const missing: string[] = [];
  const index: number[] = [];
  for (const col of required) {
    const at = lower.indexOf(col);
    if (at === -1) missing.push(col);
    else if (lower.indexOf(col, at + 1) !== -1) {
      throw new PipelineError('HCP_ERR_BAD_HEADER', `Column "${col}" appears more than once in the header`, { file, line: 1, column: col });
    }
    index.push(at);
  }
  if (missing.length > 0) {
    const joined = names.join(',');
    const hint = /[;\t|]/.test(joined) && names.length < required.length ? ' The delimiter must be a comma.' : '';
    throw new PipelineError(
      'HCP_ERR_BAD_HEADER',
      `Missing required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} for dataset ${dataset}.${hint}`,
      { file, line: 1, column: missing[0] },
    );
  }
  const extras = names.filter((_, i) => !index.includes(i));
  return { names, index, extras, dataOffset: end, lines: Math.max(1, lines) };
}

/**
 * Why the header's extra column names may be data, or null when they read as names. A name holding a line break
 * means the header ran on into the rows (CR-only line ends, a quote opened in a name and closed rows later); an
 * extra name that is a value (a number, a date, a reference range, a unit of the registry) means a data row was
 * glued onto the header line with a comma. Either way its "extra columns" are data, patient IDs included, which
 * only quarantine may hold (SPEC §3). Logs, summaries and the report then count the extras without naming them
 * (one real column named like a value, `2024` or `kg`, hides its neighbours' names too: the warning is vaguer,
 * nothing leaks). A glued row with none of these (an empty date, a text value, an unknown unit) or a lone patient
 * ID glued on cannot be told from column names: SPEC §2's ID pattern admits most names.
 */
function dataInHeader(h: Header): string | null {
  if (h.names.some((n) => /[\r\n]/.test(n))) return 'the header holds a line break, so they may be data rows (check the file\'s line ends and quotes)';
  if (h.extras.some(isValueLike)) return 'an extra column name is a value (a number, a date, a range or a unit), so the header line may hold a data row';
  return null;
}

const NUM = String.raw`[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?`;
const VALUE_LIKE = [
  new RegExp(`^${NUM}$`), // a value
  /^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T].*)?$/, // a date, ISO or not, with or without a time
  new RegExp(`^(?:[<>]=?\\s*${NUM}|${NUM}\\s*-\\s*${NUM})$`), // a reference range or a censored value (SPEC §2)
];
/** The registry's units but single letters (`C`, `F`, `m`), which a header may use as names. */
const UNITS = new Set(
  Object.values(MEASURES)
    .flat()
    .flatMap((m) => [m.canonicalUnit, ...m.alternatives.map((a) => a.unit)])
    .filter((u) => !/^[A-Za-z]$/.test(u)),
);
const isValueLike = (name: string): boolean => UNITS.has(name) || VALUE_LIKE.some((re) => re.test(name));

/** The header's column names and extras as logs and summaries may show them (see `dataInHeader`). */
export function shownNames(h: Header): { names: string[]; extras: string[] } {
  if (!dataInHeader(h)) return { names: [...h.names], extras: [...h.extras] };
  const names = h.names.map((n, i) => (h.index.includes(i) ? n : `(column ${i + 1}: not shown)`));
  return { names, extras: names.filter((_, i) => !h.index.includes(i)) };
}

/** The warning for a header's extra columns, or null when it has none. */
export function extrasWarning(h: Header): string | null {
  if (h.extras.length === 0) return null;
  const why = dataInHeader(h);
  if (!why) return `extra column(s) ignored: ${h.extras.join(', ')}`;
  return `${h.extras.length} extra column(s) ignored, names not shown: ${why}`;
}
