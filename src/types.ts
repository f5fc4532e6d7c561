/**
 * Messages that cross the worker boundary: plain data only (typed arrays,
 * strings, plain objects), declared in one place. Class instances do not
 * survive postMessage; sketches travel as their `toJSON` state.
 */
import type { TaskCpu } from './cpu.js';
import type { ColumnMeta } from './sinks/pages.js';
import type { Dataset } from './registry.js';
import type { MeasureSketchState } from './sketch/measure.js';
import type { TableState } from './transform/bytetable.js';

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
  /**
   * One per `process` pass: a worker's caches (which remember ids of the
   * pass's shared dictionaries) never outlive the pass.
   */
  readonly run: string;
}

/**
 * The dictionaries the coordinator shares with the workers (one writer, see
 * src/transform/bytetable.ts): patients keyed by `hospital_id|patient_id`
 * (payload: the hospital's dense patient number, then the 128-bit patient
 * key), and source values (no payload). Rows refer to their entries by id.
 */
export interface SharedDicts {
  readonly patients: TableState;
  readonly values: TableState;
}

/** Payload words of a shared patient entry: [dense id within its hospital, key word 0…3]. */
export const PATIENT_WORDS = 5;

/** Set on a row's patient or source-value reference when it points into the chunk's own new entries. */
export const PENDING = 0x80000000;

export interface ChunkTask {
  readonly kind: 'chunk';
  readonly seq: number;
  /** 0 for the first try, 1 for the retry after a failure. */
  readonly attempt: number;
  readonly ctx: ChunkContext;
  readonly dicts: SharedDicts;
  /** The chunk's bytes; transferred, and transferred back with the result. */
  readonly bytes: Uint8Array;
  /** A buffer an earlier result's columns came back in, for this result's (transferred; may be absent). */
  readonly spare: ArrayBuffer | null;
}

/**
 * Entries a chunk refers to that were not in the shared dictionaries when it
 * was processed: keys (UTF-8 bytes, end offsets) and payload words.
 */
export interface NewEntries {
  readonly count: number;
  readonly pool: Uint8Array;
  /** End offset of each key in `pool`. */
  readonly ends: Uint32Array;
  readonly hashes: Uint32Array;
  /** Patients: the 4 key words each; values: empty. */
  readonly payload: Uint32Array;
}

/**
 * Rejected rows of one chunk, in input order, packed: a few typed arrays
 * and short string lists instead of four strings a row, so the coordinator
 * receives and writes them without a string (or an object) per row.
 * `RejectList` builds it; `unpackRejects` reads it back row by row.
 */
export interface Rejects {
  /** Line of each record's start, relative to the chunk (0-based). */
  readonly line: Uint32Array;
  /** Each row's partition, an index into `hospitals`. */
  readonly hospital: Uint32Array;
  /** Partitions: a hospital_id if valid, else `__invalid__`. */
  readonly hospitals: string[];
  /** Each row's rule codes, an index into `codeSets`. */
  readonly codes: Uint32Array;
  /** `;`-separated rule codes. */
  readonly codeSets: string[];
  /**
   * Each row's quarantine cells from reason_codes on (`rejectCells`: the
   * record's fields as read, untrimmed, and its raw text when it could not
   * be split into the header's fields), UTF-8, back to back; row i's end at
   * `cellEnds[i]`.
   */
  readonly cells: Uint8Array;
  readonly cellEnds: Uint32Array;
  /**
   * Per hospital (as `hospitals`): the non-empty (after trimming) count per
   * required column over its rejected rows that were split into the
   * header's fields (rows that could not be split count in no column, as in
   * `ChunkResult.filled`); empty when it has none.
   */
  readonly filled: number[][];
}

export interface StageTimings {
  parse: number;
  rules: number;
  transform: number;
}

/**
 * One chunk's outcome. Accepted rows are column-wise and grouped by
 * partition: the rows of `parts[i]` are [partStart[i], partStart[i + 1]),
 * in input order within each partition.
 */
export interface ChunkResult {
  readonly kind: 'chunk-result';
  readonly seq: number;
  /** LFs in the chunk. */
  readonly lines: number;
  readonly blankLines: number;
  /** Records (rows) read, blank lines excluded. */
  readonly rows: number;
  /** Accepted rows' partitions; `defaulted`: its labs rows whose empty reference range fell back to the default. */
  readonly parts: { hospital: string; month: number; defaulted: number }[];
  readonly partStart: Uint32Array;
  readonly day: Int32Array;
  /** measure | flag << 8 | source unit (index into `units`) << 16 */
  readonly code: Uint32Array;
  readonly value: Float64Array;
  /** Labs: [low, high] per row (NaN = open bound); empty for vitals. */
  readonly ref: Float64Array;
  /** Shared patient entry id, or PENDING | index into `newPatients`. */
  readonly patient: Uint32Array;
  /** Shared source-value entry id, or PENDING | index into `newValues`. */
  readonly srcValue: Uint32Array;
  readonly units: string[];
  /** 64-bit row fingerprints over every trimmed field, [hi, lo] pairs. */
  readonly fp: Uint32Array;
  /** [record start byte offset, line relative to the chunk] pairs. */
  readonly pos: Uint32Array;
  readonly newPatients: NewEntries;
  readonly newValues: NewEntries;
  readonly rejects: Rejects;
  /** Non-empty (after trimming) count per required column, over every row read. */
  readonly filled: number[];
  readonly timings: StageTimings;
  readonly bytes: Uint8Array;
  /** The worker thread's CPU clock around the task (set by the worker entry, where the system tells). */
  readonly cpu?: TaskCpu;
}

/** The accepted rows of one (hospital, month) partition waiting to become one Parquet row group (duplicates already dropped). */
export interface Batch {
  readonly hospital: string;
  readonly month: string;
  readonly n: number;
  readonly day: Int32Array;
  /** measure | flag << 8 | source unit (index into `units`) << 16 */
  readonly code: Uint32Array;
  readonly value: Float64Array;
  readonly ref: Float64Array;
  /** Shared patient entry ids. */
  readonly patient: Uint32Array;
  /** Shared source-value entry ids. */
  readonly srcValue: Uint32Array;
  readonly units: string[];
}

export interface EncodeTask {
  readonly kind: 'encode';
  /** 0, or 1 when a worker failed on it (the pool tries a task twice). */
  readonly attempt: number;
  readonly dataset: Dataset;
  readonly batch: Batch;
  readonly dicts: SharedDicts;
}

export interface EncodeResult {
  readonly kind: 'encode-result';
  readonly rows: number;
  /** Column-chunk bytes of one row group; offsets in `rowGroup` are relative to byte 0 here. */
  readonly bytes: Uint8Array;
  readonly rowGroup: { columns: ColumnMeta[] };
  /** Per measure present in the batch: its sketch. */
  readonly sketches: { measure: number; state: MeasureSketchState }[];
  /** Systolic/diastolic pairs (same patient and date) seen in the batch (one hospital's), and how many had systolic <= diastolic. */
  readonly bpPairs: number;
  readonly bpViolations: number;
  /** Per measure present in the batch: its patients, as bitset words over the hospital's dense patient numbers (for n_patients). */
  readonly patientSets: { measure: number; words: Uint32Array }[];
  readonly timings: { sketch: number; parquet_encode: number };
  /** The batch's column buffers, sent back for the coordinator's next batches (src/merge/recycle.ts). */
  readonly recycled: ArrayBuffer[];
  /** The worker thread's CPU clock around the task (set by the worker entry, where the system tells). */
  readonly cpu?: TaskCpu;
}

export type WorkerTask = ChunkTask | EncodeTask;
export type WorkerResult = ChunkResult | EncodeResult;
