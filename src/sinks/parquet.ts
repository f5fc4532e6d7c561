/**
 * One curated Parquet file per (hospital, month) partition, assembled from
 * row groups that workers encoded in parallel: the coordinator appends each
 * row group's bytes, shifts its offsets to where they landed, and writes the
 * footer (hyparquet-writer's ParquetWriter.finish) when the partition closes.
 * See docs/decisions/0001-parquet-writer.md.
 */
import { closeSync } from 'node:fs';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { Dataset } from '../registry.js';
import { writeFully } from './fsutil.js';
import type { ColumnMeta } from './pages.js';
import { curatedSchema } from './schema.js';

/** Numbers kept per column chunk: file offset, values, bytes, data page offset, dictionary page offset, has statistics, min, max, nulls. */
const PER_COLUMN = 9;

export class PartitionFile {
  private fd: number;
  private offset = 4;
  /**
   * Row-group metadata, packed: the offsets and sizes of each column chunk
   * as numbers, names and types once (every row group has the same columns).
   * Objects with bigints for every row group of 240 open partitions cost
   * tens of MB by the end of a large file; this costs 72 bytes a column.
   */
  private packed: Float64Array[] = [];
  private groupRows: number[] = [];
  private columns: { name: string; type: ColumnMeta['meta_data']['type']; encodings: string[] }[] | null = null;
  private rows = 0;

  /** @param fd `path`, already created and opened for writing (src/merge/partitions.ts does it off the main thread) */
  constructor(readonly path: string, private readonly dataset: Dataset, fd: number) {
    this.fd = fd;
    writeFully(this.fd, Buffer.from('PAR1'));
  }

  /** Appends a row group's bytes; `rowGroup` has offsets relative to its first byte. */
  append(bytes: Uint8Array, rowGroup: { columns: ColumnMeta[] }, rows: number): void {
    const cols = rowGroup.columns;
    this.columns ??= cols.map((c) => ({ name: c.meta_data.path_in_schema[0], type: c.meta_data.type, encodings: c.meta_data.encodings }));
    const p = new Float64Array(cols.length * PER_COLUMN);
    const at = this.offset;
    cols.forEach((c, k) => {
      const m = c.meta_data;
      if (m.path_in_schema[0] !== this.columns![k].name) throw new Error(`row group column ${k} is ${m.path_in_schema[0]}, expected ${this.columns![k].name}`);
      const o = k * PER_COLUMN;
      p[o] = at + Number(c.file_offset);
      p[o + 1] = Number(m.num_values);
      p[o + 2] = Number(m.total_compressed_size);
      p[o + 3] = at + Number(m.data_page_offset);
      p[o + 4] = at + Number(m.dictionary_page_offset);
      p[o + 5] = m.statistics ? 1 : 0;
      p[o + 6] = m.statistics?.min_value ?? 0;
      p[o + 7] = m.statistics?.max_value ?? 0;
      p[o + 8] = m.statistics ? Number(m.statistics.null_count) : 0;
    });
    this.packed.push(p);
    this.groupRows.push(rows);
    writeFully(this.fd, bytes);
    this.offset += bytes.byteLength;
    this.rows += rows;
  }

  get rowCount(): number {
    return this.rows;
  }

  /** The row groups' metadata as the footer writer expects it. */
  private rowGroups(): unknown[] {
    return this.packed.map((p, g) => {
      let total = 0n;
      const columns: ColumnMeta[] = this.columns!.map((c, k) => {
        const o = k * PER_COLUMN;
        const size = BigInt(p[o + 2]);
        total += size;
        return {
          file_offset: BigInt(p[o]),
          meta_data: {
            type: c.type,
            encodings: c.encodings,
            path_in_schema: [c.name],
            codec: 'UNCOMPRESSED',
            num_values: BigInt(p[o + 1]),
            total_uncompressed_size: size,
            total_compressed_size: size,
            data_page_offset: BigInt(p[o + 3]),
            dictionary_page_offset: BigInt(p[o + 4]),
            ...(p[o + 5] === 1 ? { statistics: { min_value: p[o + 6], max_value: p[o + 7], null_count: BigInt(p[o + 8]) } } : {}),
          },
        };
      });
      return { columns, total_byte_size: total, num_rows: BigInt(this.groupRows[g]), total_compressed_size: total, file_offset: BigInt(p[0]) };
    });
  }

  /** Writes the footer and closes the file. */
  close(): void {
    const writer = new ByteWriter();
    const pq = new ParquetWriter({ writer, schema: curatedSchema(this.dataset) as never, createdBy: 'healthcare-pipeline' });
    const state = pq as unknown as { row_groups: unknown[]; num_rows: bigint };
    state.row_groups = this.rowGroups();
    state.num_rows = BigInt(this.rows);
    pq.finish();
    // Skip the 4-byte header the helper writer started with; ours is already on disk.
    writeFully(this.fd, writer.getBytes().subarray(4));
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
