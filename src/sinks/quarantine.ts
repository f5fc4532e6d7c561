/**
 * Quarantine: one rejects.csv per hospital partition — the restricted zone
 * where raw rows (and raw patient IDs) are kept for correction. Columns:
 * source_file, line_number, reason_codes, the file's own columns as read,
 * and raw_record for rows that could not be split into those columns.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { csvField } from '../parse/csv.js';

export class QuarantineFile {
  private fd: number;
  private buf: string[] = [];
  private size = 0;
  rows = 0;

  constructor(readonly path: string, private readonly sourceFile: string, private readonly columns: readonly string[]) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'w');
    this.push(['source_file', 'line_number', 'reason_codes', ...columns, 'raw_record'].map(csvField).join(',') + '\n');
  }

  add(line: number, codes: string, fields: readonly string[], raw: string): void {
    const cells = [this.sourceFile, String(line), codes];
    for (let i = 0; i < this.columns.length; i++) cells.push(fields[i] ?? '');
    cells.push(raw);
    this.push(cells.map(csvField).join(',') + '\n');
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
