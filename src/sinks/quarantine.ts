/**
 * Quarantine: one rejects.csv per hospital partition — the restricted zone
 * where raw rows (and raw patient IDs) are kept for correction. Columns:
 * source_file, line_number, reason_codes, the file's own columns as read,
 * and raw_record for rows that could not be split into those columns.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { csvField } from '../parse/csv.js';
import type { Rejects } from '../types.js';
import { BufferedWrites } from './fsutil.js';

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

/** A chunk's rejects as a worker collects them, packed for the coordinator (see `Rejects`). */
export class RejectList {
  private line: number[] = [];
  private hospital: number[] = [];
  private hospitals = new Map<string, number>();
  private codes: number[] = [];
  private codeSets = new Map<string, number>();
  private cells = Buffer.allocUnsafe(4096);
  private cellBytes = 0;
  private cellEnds: number[] = [];
  /** Per hospital index: non-empty required fields of its rejected rows (see `Rejects.filled`). */
  private filled: number[][] = [];

  get length(): number {
    return this.line.length;
  }

  /** Adds a rejected row; `required`: its required fields, trimmed, when it could be split into the header's fields. */
  push(line: number, codes: string, hospital: string, cells: string, required: readonly string[] | null = null): void {
    this.line.push(line);
    const h = indexOf(this.hospitals, hospital);
    this.hospital.push(h);
    if (required) {
      const filled = (this.filled[h] ??= new Array<number>(required.length).fill(0));
      for (let i = 0; i < required.length; i++) if (required[i] !== '') filled[i]++;
    }
    this.codes.push(indexOf(this.codeSets, codes));
    const need = this.cellBytes + Buffer.byteLength(cells);
    if (need > this.cells.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, 2 * this.cells.length));
      this.cells.copy(bigger, 0, 0, this.cellBytes);
      this.cells = bigger;
    }
    this.cellBytes += this.cells.write(cells, this.cellBytes);
    this.cellEnds.push(this.cellBytes);
  }

  pack(): Rejects {
    return {
      line: Uint32Array.from(this.line),
      hospital: Uint32Array.from(this.hospital),
      hospitals: [...this.hospitals.keys()],
      codes: Uint32Array.from(this.codes),
      codeSets: [...this.codeSets.keys()],
      cells: new Uint8Array(this.cells.subarray(0, this.cellBytes)),
      cellEnds: Uint32Array.from(this.cellEnds),
      filled: Array.from(this.hospitals.values(), (h) => this.filled[h] ?? []),
    };
  }
}

function indexOf(ids: Map<string, number>, key: string): number {
  let id = ids.get(key);
  if (id === undefined) ids.set(key, (id = ids.size));
  return id;
}

/** Packed rejects row by row (for tests and tools; the coordinator reads the packed form). */
export function unpackRejects(r: Rejects): { line: number; codes: string; hospital: string; cells: string }[] {
  const text = Buffer.from(r.cells.buffer, r.cells.byteOffset, r.cells.byteLength);
  return Array.from(r.line, (line, i) => ({
    line,
    codes: r.codeSets[r.codes[i]],
    hospital: r.hospitals[r.hospital[i]],
    cells: text.toString('utf8', i === 0 ? 0 : r.cellEnds[i - 1], r.cellEnds[i]),
  }));
}

/** Bytes a quarantine file collects before it writes them. Small: a file may have many hospitals, each with its own buffer. */
const BUFFER_BYTES = 1 << 16;

export class QuarantineFile {
  private readonly out: BufferedWrites;
  private readonly sourceCell: Buffer;
  private closed = false;
  rows = 0;

  constructor(readonly path: string, sourceFile: string, private readonly columns: readonly string[]) {
    mkdirSync(dirname(path), { recursive: true });
    this.out = new BufferedWrites(openSync(path, 'w'), BUFFER_BYTES);
    this.sourceCell = Buffer.from(csvField(sourceFile) + ',');
    this.out.text(['source_file', 'line_number', 'reason_codes', ...columns, 'raw_record'].map(csvField).join(',') + '\n');
  }

  add(line: number, codes: string, fields: readonly string[], raw: string): void {
    this.addCells(line, rejectCells(codes, fields, this.columns.length, raw));
  }

  /** Adds a row whose cells after the line number were formatted already (`rejectCells`). */
  addCells(line: number, cells: string): void {
    this.prefix(line);
    this.out.text(cells + '\n');
    this.rows++;
  }

  /** Adds a row whose cells after the line number are `cells[start, end)` (UTF-8, formatted by a worker). */
  addCellBytes(line: number, cells: Buffer, start: number, end: number): void {
    this.prefix(line);
    this.out.append(cells, start, end);
    this.out.append(NEWLINE, 0, 1);
    this.rows++;
  }

  /** The source file cell and the line number, then a comma. */
  private prefix(line: number): void {
    const out = this.out;
    out.append(this.sourceCell, 0, this.sourceCell.length);
    out.room(16);
    const buf = out.buf;
    let digits = 1;
    for (let x = line; x >= 10; x = Math.floor(x / 10)) digits++;
    for (let k = digits - 1, x = line; k >= 0; k--, x = Math.floor(x / 10)) buf[out.fill + k] = 48 + (x % 10);
    buf[out.fill + digits] = 44; // ','
    out.fill += digits + 1;
  }

  /** Writes what is buffered and closes the file; the file is closed even when that write fails, and only once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.out.flush();
    } finally {
      closeSync(this.out.fd);
    }
  }
}

const NEWLINE = Buffer.from('\n');
