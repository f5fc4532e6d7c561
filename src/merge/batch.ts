/**
 * Accumulates the accepted rows of one (hospital, month) partition, from
 * the chunks that carry them, into contiguous columns: one encode task then
 * carries a handful of typed arrays. On the way in, duplicates are skipped
 * and row references to a chunk's new dictionary entries become published
 * ids. (Each row's patient is marked for `n_patients` by the encoding
 * worker: src/sinks/encode.ts `patientSets`.)
 *
 * When the coordinator needs the memory back before a row group is full, a
 * builder spills its rows to the run's spill log in staging, as they are
 * (24 bytes a vitals row), and reads them back when the row group is
 * encoded: row groups reach their full size whatever the number of open
 * partitions, in bounded memory.
 */
import { closeSync, ftruncateSync, openSync, rmSync } from 'node:fs';
import { readFully, writevFully } from '../sinks/fsutil.js';
import { type Batch, type ChunkResult, PENDING } from '../types.js';
import type { BufferRecycler, TypedArrayType } from './recycle.js';

/** The most rows a spilled builder makes room for at once (then it grows by doubling): 4096 rows × 240 partitions ≈ 24 MB at most. */
const SPILLED_CAPACITY = 4096;

/** A growable typed array: `reserve` makes room, keeping what is filled. */
export class Column<T extends Uint8Array | Int32Array | Uint32Array | Float64Array> {
  data: T;
  constructor(readonly type: TypedArrayType<T>, capacity = 256) {
    this.data = new type(capacity);
  }
  reserve(length: number, extra: number): T {
    if (length + extra > this.data.length) {
      const bigger = new this.type(Math.max(length + extra, this.data.length * 2));
      bigger.set(this.data.subarray(0, length) as never);
      this.data = bigger;
    }
    return this.data;
  }
  /** The filled part, right-sized (a copy into a recycled buffer when one is given). */
  take(length: number, recycler: BufferRecycler | null): T {
    if (length === this.data.length) return this.data;
    if (!recycler) return this.data.slice(0, length) as T;
    const out = recycler.take(this.type, length);
    out.set(this.data.subarray(0, length) as never);
    return out;
  }
}

/** A growable bitset with a population count. */
export class Bitset {
  private words = new Uint32Array(8);
  add(i: number): void {
    const w = i >>> 5;
    this.ensure(w + 1);
    this.words[w] |= 1 << (i & 31);
  }
  count(): number {
    let n = 0;
    for (let x of this.words) {
      x -= (x >>> 1) & 0x55555555;
      x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
      n += Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
    }
    return n;
  }
  /** Adds every member of another set, given as its words (bit i of word w is member 32w + i). */
  or(words: Uint32Array): void {
    this.ensure(words.length);
    const own = this.words;
    for (let w = 0; w < words.length; w++) own[w] |= words[w];
  }
  /** Room for `n` words at least (doubling), the members kept. */
  private ensure(n: number): void {
    if (n <= this.words.length) return;
    const bigger = new Uint32Array(Math.max(n, this.words.length * 2));
    bigger.set(this.words);
    this.words = bigger;
  }
  get bytes(): number {
    return this.words.byteLength;
  }
}

/**
 * The staging file every partition of a file spills to (decision 0007):
 * each spill is appended, and its builder remembers where. One file for
 * all, created on the first spill, because creating a file is what a spill
 * cost most (0.4–1.3 ms each on the benchmark machine's ext4, more on a
 * network filesystem, and once per partition), not writing to it. The
 * file is emptied whenever every spilled byte has been read back, and
 * removed by `close`.
 */
export class SpillLog {
  private fd: number | null = null;
  /** Bytes written so far: where the next spill goes. */
  private size = 0;
  /** Bytes written and not read back yet. */
  private live = 0;
  constructor(readonly path: string) {}

  /** Appends `parts` (one writev) and returns the position they start at. */
  append(parts: Uint8Array[]): number {
    this.fd ??= openSync(this.path, 'a+');
    const at = this.size;
    writevFully(this.fd, parts);
    const n = parts.reduce((sum, p) => sum + p.length, 0);
    this.size += n;
    this.live += n;
    return at;
  }

  /**
   * Reads dst.length bytes written at `position` back into dst. Each
   * spilled byte is read back once: when none is left to read, the file is
   * emptied and the next spill starts again at 0, so staging holds at most
   * what was spilled since the last moment nothing waited there.
   */
  read(dst: Uint8Array, position: number): void {
    if (this.fd === null || readFully(this.fd, dst, 0, dst.length, position) < dst.length) throw new Error(`spill log ${this.path} is short`);
    this.live -= dst.length;
    if (this.live === 0 && this.size > 0) {
      ftruncateSync(this.fd, 0);
      this.size = 0;
    }
  }

  /** Closes and removes the file (if a spill created it). */
  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    this.size = 0;
    this.live = 0;
    rmSync(this.path, { force: true });
  }
}

/** Rows to append: a chunk result's accepted rows, or a batch (rows held back by the duplicate filter). */
export type RowSource = Pick<ChunkResult, 'day' | 'code' | 'value' | 'ref' | 'patient' | 'srcValue'>;

/**
 * The source units of a run, numbered once: batches' rows refer to them by
 * these numbers, and each chunk's own unit numbers are mapped onto them once
 * per chunk (`map`), not once per partition the chunk feeds.
 */
export class UnitIds {
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();

  /** For each of a chunk's units (its own numbering), the run's number. */
  map(units: readonly string[]): number[] {
    return units.map((u) => {
      let id = this.ids.get(u);
      if (id === undefined) {
        id = this.names.push(u) - 1;
        this.ids.set(u, id);
      }
      return id;
    });
  }
}

/** Ids for a source whose references are all published already (a batch). */
export const NO_PENDING: ChunkIds = { patients: new Uint32Array(0), values: new Uint32Array(0) };

/** What a chunk's rows need to be resolved: ids of its new entries once published. */
export interface ChunkIds {
  readonly patients: Uint32Array;
  readonly values: Uint32Array;
}

export class BatchBuilder {
  // Set by freshColumns().
  private day!: Column<Int32Array>;
  private code!: Column<Uint32Array>;
  private value!: Column<Float64Array>;
  private ref!: Column<Float64Array>;
  private patient!: Column<Uint32Array>;
  private srcValue!: Column<Uint32Array>;
  /** Rows in memory. */
  rows = 0;
  /** Rows in the spill log (before the rows in memory), by spill: how many, and where in the log. */
  private spills: { rows: number; at: number }[] = [];
  private spilledRows = 0;

  /**
   * @param units the run's source units, which rows refer to (a chunk's own numbers are mapped by `append`'s caller)
   * @param log where rows go when spilled, shared by a run's builders (none: this builder cannot spill)
   */
  constructor(
    readonly hospital: string,
    readonly month: string,
    private readonly labs: boolean,
    private readonly units: UnitIds,
    private readonly log: SpillLog | null = null,
  ) {
    this.freshColumns();
  }

  /** Rows of the next batch: spilled and in memory. */
  get pending(): number {
    return this.spilledRows + this.rows;
  }

  /**
   * Appends rows [from, to) of a chunk result, skipping those whose index is
   * in `drop` (sorted). `unitMap` maps the chunk's unit numbers onto the
   * run's (`UnitIds.map`); null when they are the run's already (a batch).
   */
  append(r: RowSource, from: number, to: number, drop: number[] | null, ids: ChunkIds, unitMap: readonly number[] | null): void {
    const kept = to - from - (drop?.length ?? 0);
    if (kept <= 0) return;
    const o = this.rows;
    const day = this.day.reserve(o, kept);
    const code = this.code.reserve(o, kept);
    const value = this.value.reserve(o, kept);
    const ref = this.labs ? this.ref.reserve(2 * o, 2 * kept) : null;
    const patient = this.patient.reserve(o, kept);
    const srcValue = this.srcValue.reserve(o, kept);
    const rDay = r.day;
    const rCode = r.code;
    const rValue = r.value;
    const rPatient = r.patient;
    const rSrc = r.srcValue;
    if (drop === null) {
      // Most ranges: every row kept, block copies (memcpy) but for the codes' unit numbers.
      day.set(rDay.subarray(from, to), o);
      value.set(rValue.subarray(from, to), o);
      patient.set(rPatient.subarray(from, to), o);
      srcValue.set(rSrc.subarray(from, to), o);
      if (unitMap === null) code.set(rCode.subarray(from, to), o);
      else
        for (let i = from, k = o; i < to; i++, k++) {
          const c = rCode[i];
          code[k] = (c & 0xffff) | (unitMap[c >>> 16] << 16);
        }
      if (ref) ref.set(r.ref.subarray(2 * from, 2 * to), 2 * o);
    } else {
      const rRef = r.ref;
      let d = 0;
      for (let i = from, k = o; i < to; i++) {
        if (d < drop.length && drop[d] === i) {
          d++;
          continue;
        }
        const c = rCode[i];
        day[k] = rDay[i];
        code[k] = unitMap === null ? c : (c & 0xffff) | (unitMap[c >>> 16] << 16);
        value[k] = rValue[i];
        if (ref) {
          ref[2 * k] = rRef[2 * i];
          ref[2 * k + 1] = rRef[2 * i + 1];
        }
        patient[k] = rPatient[i];
        srcValue[k] = rSrc[i];
        k++;
      }
    }
    this.rows = o + kept;
    // References to the chunk's new entries (few: a patient's or value's first rows) become their published ids.
    if (ids.patients.length > 0) resolveAll(patient, o, o + kept, ids.patients);
    if (ids.values.length > 0) resolveAll(srcValue, o, o + kept, ids.values);
  }

  /**
   * Appends the rows in memory to the spill log and lets their memory go.
   */
  spill(): void {
    const n = this.rows;
    if (n === 0) return;
    if (!this.log) throw new Error('BatchBuilder: no spill log');
    // One write for the six columns.
    const at = this.log.append(this.columns().map(({ column, width }) => bytesOf(column.data, 0, n * width)));
    this.spills.push({ rows: n, at });
    this.spilledRows += n;
    // Its next rows likely come in as fast: room for as many (within a small bound), not a regrowth from 256;
    // columns of that size already are kept (nothing else holds them: the rows went to the file).
    if (this.day.data.length > SPILLED_CAPACITY) this.freshColumns(Math.min(n, SPILLED_CAPACITY));
    this.rows = 0;
  }

  /**
   * The accumulated rows (spilled first, then in memory) as one batch; the
   * builder is empty afterwards. Columns that need new memory take it from
   * `recycler` when given.
   */
  take(recycler: BufferRecycler | null = null): Batch {
    const n = this.pending;
    const [day, code, value, ref, patient, srcValue] = this.spilledRows === 0 ? this.columns().map(({ column, width }) => column.take(this.rows * width, recycler)) : this.readBack(recycler);
    const batch: Batch = { hospital: this.hospital, month: this.month, n, day, code, value, ref, patient, srcValue, units: this.units.names.slice() } as Batch;
    this.freshColumns();
    this.rows = 0;
    return batch;
  }

  /** Every column with its values per row, in spill-file order. */
  private columns(): { column: Column<Int32Array | Uint32Array | Float64Array>; width: number }[] {
    return [
      { column: this.day, width: 1 },
      { column: this.code, width: 1 },
      { column: this.value, width: 1 },
      { column: this.ref, width: this.labs ? 2 : 0 },
      { column: this.patient, width: 1 },
      { column: this.srcValue, width: 1 },
    ];
  }

  /** Full-size columns: the spilled rows read back, then the rows in memory. */
  private readBack(recycler: BufferRecycler | null): (Int32Array | Uint32Array | Float64Array)[] {
    const n = this.pending;
    const cols = this.columns();
    const out = cols.map(({ column, width }) => (recycler ? recycler.take(column.type, n * width) : new column.type(n * width)));
    let row = 0;
    for (const { rows, at } of this.spills) {
      let pos = at;
      for (let c = 0; c < cols.length; c++) {
        const dst = bytesOf(out[c], row * cols[c].width, rows * cols[c].width);
        this.log!.read(dst, pos);
        pos += dst.length;
      }
      row += rows;
    }
    for (let c = 0; c < cols.length; c++) out[c].set(cols[c].column.data.subarray(0, this.rows * cols[c].width) as never, this.spilledRows * cols[c].width);
    this.spills = [];
    this.spilledRows = 0;
    return out;
  }

  // Fresh, small columns: a partition's next rows may be far fewer, and
  // 240 partitions each keeping its largest capacity would defeat the memory bound.
  private freshColumns(capacity = 256): void {
    this.day = new Column(Int32Array, capacity);
    this.code = new Column(Uint32Array, capacity);
    this.value = new Column(Float64Array, capacity);
    this.ref = new Column(Float64Array, this.labs ? 2 * capacity : 0);
    this.patient = new Column(Uint32Array, capacity);
    this.srcValue = new Column(Uint32Array, capacity);
  }
}

/** A batch's own column buffers (not the empty ones), each once: what goes to the encoding worker and comes back. */
export function batchBuffers(b: Batch): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const a of [b.day, b.code, b.value, b.ref, b.patient, b.srcValue]) if (a.byteLength > 0 && a.buffer instanceof ArrayBuffer) out.add(a.buffer);
  return [...out];
}

/** Replaces, in a[from, to), each reference to a chunk's new entry (PENDING | index) by its published id. */
function resolveAll(a: Uint32Array, from: number, to: number, published: Uint32Array): void {
  for (let k = from; k < to; k++) {
    const v = a[k];
    if (v >= PENDING) a[k] = published[v - PENDING];
  }
}

/** The bytes of elements [from, from + count) of a typed array. */
function bytesOf(a: Int32Array | Uint32Array | Float64Array, from: number, count: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset + from * a.BYTES_PER_ELEMENT, count * a.BYTES_PER_ELEMENT);
}
