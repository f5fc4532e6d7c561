/**
 * One curated Parquet file per (hospital, month) partition, assembled from
 * row groups that workers encoded in parallel: the coordinator appends each
 * row group's bytes, shifts its offsets to where they landed, and writes the
 * footer (hyparquet-writer's ParquetWriter.finish) when the partition closes.
 * See docs/decisions/0001-parquet-writer.md.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { Dataset } from '../registry.js';
import { relocate } from './encode.js';
import { curatedSchema } from './schema.js';

export class PartitionFile {
  private fd: number;
  private offset = 4;
  private rowGroups: unknown[] = [];
  private rows = 0n;

  constructor(readonly path: string, private readonly dataset: Dataset) {
    this.fd = openSync(path, 'w');
    writeSync(this.fd, Buffer.from('PAR1'));
  }

  append(bytes: Uint8Array, rowGroup: unknown, rows: number): void {
    this.rowGroups.push(relocate(rowGroup, BigInt(this.offset)));
    writeSync(this.fd, bytes);
    this.offset += bytes.byteLength;
    this.rows += BigInt(rows);
  }

  get rowCount(): number {
    return Number(this.rows);
  }

  /** Writes the footer and closes the file. */
  close(): void {
    const writer = new ByteWriter();
    const pq = new ParquetWriter({ writer, schema: curatedSchema(this.dataset) as never, createdBy: 'healthcare-pipeline' });
    const state = pq as unknown as { row_groups: unknown[]; num_rows: bigint };
    state.row_groups = this.rowGroups;
    state.num_rows = this.rows;
    pq.finish();
    // Skip the 4-byte header the helper writer started with; ours is already on disk.
    writeSync(this.fd, writer.getBytes().subarray(4));
    closeSync(this.fd);
  }

  /** Closes the file descriptor without a footer (abandoned run). */
  abandon(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}
