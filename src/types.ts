/**
 * Messages that cross the worker boundary: plain data only (typed arrays,
 * strings, plain objects), declared in one place. Class instances do not
 * survive postMessage; sketches travel as their `toJSON` state.
 */
import type { Dataset } from './registry.js';
import type { MeasureSketchState } from './sketch/measure.js';

/** What a worker needs to check and transform rows of one file. */
export interface ChunkContext {
  readonly dataset: Dataset;
  /** For each required column (COLUMNS order), its index in the file's header. */
  readonly index: readonly number[];
  readonly columnCount: number;
  readonly asOfDay: number;
  readonly period: { first: number; last: number } | null;
  /** The pseudonymisation key; lives only in memory, never logged. */
  readonly key: string;
}

export interface ChunkTask {
  readonly kind: 'chunk';
  readonly seq: number;
  /** 0 for the first try, 1 for the retry after a failure. */
  readonly attempt: number;
  readonly ctx: ChunkContext;
  /** The chunk's bytes; transferred, and transferred back with the result. */
  readonly bytes: Uint8Array;
}

/**
 * The accepted rows of one (hospital, month), column-wise: what an encode
 * task needs. Source units are dictionary-encoded; patient keys and source
 * values are joined strings (fixed width, and with end offsets).
 * Few arrays per block on purpose: a chunk yields one block per partition.
 */
export interface Block {
  readonly hospital: string;
  readonly month: string;
  readonly n: number;
  readonly day: Int32Array;
  /** measure index | flag << 8 | source-unit index << 16 */
  readonly code: Uint32Array;
  readonly value: Float64Array;
  /** Labs: reference range per row, [low, high] pairs (NaN = open bound); empty for vitals. */
  readonly ref: Float64Array;
  /** Patient keys (32 hex chars each), joined: one string crosses threads, not one per row. */
  readonly patientKeys: string;
  readonly srcUnits: string[];
  /** Source values joined into one string, with each value's end offset. */
  readonly srcValues: string;
  readonly srcValueEnd: Uint32Array;
}

/** A block as a chunk task returns it: plus what the coordinator needs for duplicates. */
export interface ChunkBlock extends Block {
  /** 64-bit row fingerprints over every trimmed field, [hi, lo] pairs. */
  readonly hash: Uint32Array;
  /** [record start, line] pairs: the start offset (see ChunkResult.decoding) and line relative to the chunk. */
  readonly pos: Uint32Array;
}

/** Rejected rows of one chunk, in input order. */
export interface Rejects {
  /** Line of the record's start, relative to the chunk (0-based). */
  readonly line: number[];
  /** `;`-separated rule codes. */
  readonly codes: string[];
  /** Partition: the row's hospital_id if valid, else `__invalid__`. */
  readonly hospital: string[];
  /** The record's fields as read (untrimmed), for the quarantine file. */
  readonly fields: string[][];
  /** The record's raw text when it could not be split into the header's fields, else ''. */
  readonly raw: string[];
}

export interface StageTimings {
  parse: number;
  rules: number;
  transform: number;
}

export interface ChunkResult {
  readonly kind: 'chunk-result';
  readonly seq: number;
  /** LFs in the chunk. */
  readonly lines: number;
  readonly blankLines: number;
  /** Records (rows) read, blank lines excluded. */
  readonly rows: number;
  readonly blocks: ChunkBlock[];
  readonly rejects: Rejects;
  /** How record offsets (`recStart`) are to be read: `utf8` = offsets in the UTF-8-decoded chunk, else byte offsets. */
  readonly decoding: 'latin1' | 'utf8' | 'bytes';
  /** Non-empty (after trimming) count per required column, over every row read. */
  readonly filled: number[];
  /** Labs rows whose empty reference range fell back to the default. */
  readonly defaultedRanges: number;
  readonly timings: StageTimings;
  readonly bytes: Uint8Array;
}

/** A batch of one (hospital, month) partition to encode as one Parquet row group (duplicates already dropped). */
export interface EncodeTask {
  readonly kind: 'encode';
  readonly dataset: Dataset;
  readonly block: Block;
}

export interface EncodeResult {
  readonly kind: 'encode-result';
  readonly rows: number;
  /** Column-chunk bytes of one row group; offsets in `rowGroup` are relative to byte 0 here. */
  readonly bytes: Uint8Array;
  readonly rowGroup: unknown;
  /** Per measure index present in the batch. */
  /** Per measure: its sketch and the batch's distinct patient keys, 4 words (128 bits) each. */
  readonly sketches: { measure: number; state: MeasureSketchState; patients: Uint32Array }[];
  /** Systolic/diastolic pairs (same patient and date) seen in the batch, and how many had systolic <= diastolic. */
  readonly bpPairs: number;
  readonly bpViolations: number;
  readonly timings: { sketch: number; parquet_encode: number };
}

export type WorkerTask = ChunkTask | EncodeTask;
export type WorkerResult = ChunkResult | EncodeResult;
