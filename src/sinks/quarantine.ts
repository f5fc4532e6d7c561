/**
 * Quarantine: one rejects.csv per hospital partition — the restricted zone
 * where raw rows (and raw patient IDs) are kept for correction. Columns:
 * source_file, line_number, reason_codes, the file's own columns as read,
 * and raw_record for rows that could not be split into those columns.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { csvField } from '../parse/csv.js';

/**
 * A rejected row's cells from reason_codes on, as CSV text without the line
 * end: the codes, the file's `columns` fields as read (missing ones empty),
 * and the raw record. Workers format their chunk's rejects with it, so the
 * coordinator only prefixes the source file and the line number.
 */
export function rejectCells(codes: string, fields: readonly string[], columns: number, raw: string): string {
  let s = csvField(codes);
  for (let i = 0; i < columns; i++) s += ',' + csvField(fields[i] ?? '');
  return s + ',' + csvField(raw);
}

export class QuarantineFile {
  private fd: number;
  private buf: string[] = [];
  private size = 0;
  private readonly sourceCell: string;
  rows = 0;

  constructor(readonly path: string, sourceFile: string, private readonly columns: readonly string[]) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'w');
    this.sourceCell = csvField(sourceFile);
    this.push(['source_file', 'line_number', 'reason_codes', ...columns, 'raw_record'].map(csvField).join(',') + '\n');
  }

  add(line: number, codes: string, fields: readonly string[], raw: string): void {
    this.addCells(line, rejectCells(codes, fields, this.columns.length, raw));
  }

  /** Adds a row whose cells after the line number were formatted already (`rejectCells`, in a worker). */
  addCells(line: number, cells: string): void {
    this.push(`${this.sourceCell},${line},${cells}\n`);
    this.rows++;
  }

  private push(s: string): void {
    this.buf.push(s);
    this.size += s.length;
    // Small: a file may have many hospitals, each with its own buffer.
    if (this.size > 1 << 16) this.flush();
  }

  private flush(): void {
    if (this.buf.length === 0) return;
    writeSync(this.fd, this.buf.join(''));
    this.buf = [];
    this.size = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
