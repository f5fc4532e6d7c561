/**
 * The coordinator's per-partition state: accepted-row blocks waiting to be
 * encoded, the open Parquet file, the merged sketches and distinct patients
 * of each (hospital, month). A partition's rows become one row group when
 * `rowGroupRows` of them wait, or when the file ends; while more than
 * `maxBufferedRows` rows wait in memory over all partitions, the largest
 * spill to staging (src/merge/batch.ts), so row groups keep their size
 * however many partitions a file has. Batches go to the pool as encode
 * tasks; results are applied strictly in dispatch order, so files and
 * statistics do not depend on which worker finished first.
 */
import { dirname, join } from 'node:path';
import { closeSync, mkdirSync, open } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Dataset } from '../registry.js';
import { monthOf } from '../rules/fields.js';
import { MeasureSketch } from '../sketch/measure.js';
import type { ChunkResult, EncodeResult } from '../types.js';
import { BatchBuilder, batchBuffers, Bitset, type ChunkIds, NO_PENDING, SpillLog, UnitIds } from './batch.js';
import { BufferRecycler, freeNow } from './recycle.js';
import type { Dictionaries } from './dicts.js';
import { PartitionFile } from '../sinks/parquet.js';
import type { Pool } from '../pool.js';
import type { CpuAccount } from '../cpu.js';

export interface Partition {
  hospital: string;
  month: string;
  batch: BatchBuilder;
  file: PartitionFile | null;
  sketches: Map<number, MeasureSketch>;
  /** Per measure: the distinct patients so far, as a bitset over the hospital's dense patient numbers. */
  patients: Bitset[];
  /** Rows the duplicate filter held back (suspects), in arrival order, until it decides. */
  held: BatchBuilder | null;
  /** The Parquet file's directory and descriptor, being created off this thread since the partition's first batch was sent. */
  opening: Promise<number> | null;
  /** Systolic/diastolic pairs of its row groups, and how many had systolic <= diastolic (the report's check, by hospital). */
  bpPairs: number;
  bpViolations: number;
}

export class Partitions {
  private parts = new Map<string, Partition>();
  private inFlight: { part: Partition; result: Promise<EncodeResult> }[] = [];
  private buffered = 0;
  /** The run's source units, which every batch's rows refer to. */
  readonly units = new UnitIds();
  /** Batch column buffers back from the workers, for the next batches: six columns for each batch in flight, and one more batch. */
  private readonly recycler: BufferRecycler;
  /** Where the partitions spill (one staging file for all, created on the first spill). */
  private readonly spillLog: SpillLog;
  timings = { sketch: 0, parquet_encode: 0, write: 0 };

  constructor(
    private readonly dataset: Dataset,
    private readonly pool: Pool,
    private readonly dicts: Dictionaries,
    private readonly stagingCurated: string,
    /** Staging directory for spilled rows. */
    private readonly stagingSpill: string,
    private readonly rowGroupRows: number,
    private readonly maxBufferedRows: number,
    private readonly maxInFlight: number,
    /** The file's CPU by thread: each encode task's reading goes here. */
    private readonly cpu: CpuAccount,
  ) {
    this.recycler = new BufferRecycler(6 * (maxInFlight + 1));
    this.spillLog = new SpillLog(join(stagingSpill, 'rows.bin'));
  }

  /** The partition of a chunk's part `p`, created on first sight. */
  partitionOf(r: ChunkResult, p: number): Partition {
    const { hospital, month } = r.parts[p];
    const key = `${hospital}\u0000${month}`;
    let part = this.parts.get(key);
    if (!part) {
      const m = monthOf(month);
      part = { hospital, month: m, batch: new BatchBuilder(hospital, m, this.dataset === 'labs', this.units, this.spillLog), file: null, sketches: new Map(), patients: [], held: null, opening: null, bpPairs: 0, bpViolations: 0 };
      if (this.parts.size === 0) mkdirSync(this.stagingSpill, { recursive: true });
      this.parts.set(key, part);
    }
    return part;
  }

  /**
   * Adds rows [from, to) of a chunk result to their partition, without the
   * duplicates in `drop`; `unitMap` is the chunk's `units.map(r.units)`.
   */
  add(part: Partition, r: ChunkResult, from: number, to: number, drop: number[] | null, ids: ChunkIds, unitMap: readonly number[]): Promise<void> | null {
    const before = part.batch.rows;
    part.batch.append(r, from, to, drop, ids, unitMap);
    this.buffered += part.batch.rows - before;
    // Null (nothing to wait for) unless a row group is full: most calls, and no promise each.
    if (part.batch.pending < this.rowGroupRows) {
      this.bound();
      return null;
    }
    return this.flush(part).then(() => this.bound());
  }

  /** Bounds memory: spills the biggest partitions while too many rows wait in memory. */
  private bound(): void {
    if (this.buffered <= this.maxBufferedRows) return;
    const t0 = performance.now();
    while (this.buffered > this.maxBufferedRows) {
      let biggest: Partition | null = null;
      for (const q of this.parts.values()) if (!biggest || q.batch.rows > biggest.batch.rows) biggest = q;
      if (!biggest || biggest.batch.rows === 0) break;
      this.buffered -= biggest.batch.rows;
      biggest.batch.spill();
    }
    this.timings.write += performance.now() - t0;
  }

  /**
   * Holds row `i` of a chunk result back (a duplicate suspect) until
   * `release` (a dropped duplicate's patient is its original's, so
   * n_patients does not miss it). Returns the row's
   * index among its partition's held rows (what `release` drops by).
   */
  hold(part: Partition, r: ChunkResult, i: number, ids: ChunkIds, unitMap: readonly number[]): number {
    part.held ??= new BatchBuilder(part.hospital, part.month, this.dataset === 'labs', this.units);
    const k = part.held.rows;
    part.held.append(r, i, i + 1, null, ids, unitMap);
    return k;
  }

  /** Held rows of a partition, in order; `drop` lists (ascending) the ones that turned out duplicates. */
  async release(part: Partition, drop: number[]): Promise<void> {
    if (!part.held) return;
    const held = part.held.take();
    part.held = null;
    const before = part.batch.rows;
    part.batch.append(held, 0, held.n, drop.length > 0 ? drop : null, NO_PENDING, null);
    this.buffered += part.batch.rows - before;
    if (part.batch.pending >= this.rowGroupRows) await this.flush(part);
  }

  private async flush(p: Partition): Promise<void> {
    if (p.batch.pending === 0) return;
    this.buffered -= p.batch.rows;
    const t0 = performance.now();
    const batch = p.batch.take(this.recycler);
    this.timings.write += performance.now() - t0;
    const dicts = this.dicts.state;
    const transfer = batchBuffers(batch);
    // Creating a directory and a file costs up to a millisecond or more of
    // system time each (more on a network filesystem); libuv's threads do it
    // while the batch is encoded, instead of this thread when it is applied.
    if (!p.opening) {
      p.opening = openForWriting(this.curatedPath(p));
      p.opening.catch(() => {}); // observed when applied
    }
    // The batch's columns are transferred, not copied (nothing keeps them here), so an encode task is tried once.
    const result = this.pool.run<EncodeResult>((attempt) => ({ task: { kind: 'encode', attempt, dataset: this.dataset, batch, dicts }, transfer, once: true }));
    result.catch(() => {}); // observed when applied
    this.inFlight.push({ part: p, result });
    while (this.inFlight.length > this.maxInFlight) await this.applyNext();
  }

  private async applyNext(): Promise<void> {
    const { part, result } = this.inFlight.shift()!;
    const r = await result;
    part.file ??= new PartitionFile(this.curatedPath(part), this.dataset, await part.opening!);
    const t0 = performance.now();
    this.cpu.add(r.cpu);
    part.file.append(r.bytes, r.rowGroup, r.rows);
    // Written (synchronously): the row group's bytes are freed now, not at this thread's next collection, so
    // the encoding worker's malloc arena they came from can reuse them (RSS at 10M rows: docs/performance/HISTORY.md).
    freeNow([r.bytes.buffer as ArrayBuffer]);
    this.recycler.give(r.recycled);
    this.timings.write += performance.now() - t0;
    this.timings.sketch += r.timings.sketch;
    this.timings.parquet_encode += r.timings.parquet_encode;
    for (const { measure, state } of r.sketches) {
      const s = MeasureSketch.fromJSON(state);
      const have = part.sketches.get(measure);
      if (have) have.merge(s);
      else part.sketches.set(measure, s);
    }
    for (const { measure, words } of r.patientSets) (part.patients[measure] ??= new Bitset()).or(words);
    freeNow(r.patientSets.map((s) => s.words.buffer as ArrayBuffer));
    part.bpPairs += r.bpPairs;
    part.bpViolations += r.bpViolations;
  }

  /** Flushes everything, applies every pending result and closes the files. */
  async finish(): Promise<void> {
    const all = [...this.parts.values()].sort((a, b) => cmp(a.hospital, b.hospital) || cmp(a.month, b.month));
    for (const p of all) await this.flush(p);
    this.spillLog.close();
    while (this.inFlight.length > 0) await this.applyNext();
    const t0 = performance.now();
    for (const p of all) {
      p.file?.close();
      p.patients.forEach((set, m) => {
        const s = p.sketches.get(m);
        if (s) s.nPatients = set.count();
      });
      p.patients = [];
    }
    this.timings.write += performance.now() - t0;
  }

  /** Drains pending work after a failure, closing files without footers. */
  async abandon(): Promise<void> {
    await Promise.allSettled(this.inFlight.map((x) => x.result));
    this.inFlight = [];
    this.spillLog.close();
    for (const p of this.parts.values()) {
      if (p.file) p.file.abandon();
      else if (p.opening) {
        const fd = await p.opening.catch(() => null);
        if (fd !== null) closeSync(fd);
      }
    }
  }

  /** Where a partition's curated rows go in staging. */
  private curatedPath(p: Partition): string {
    return join(this.stagingCurated, `hospital_id=${p.hospital}`, `month=${p.month}`, 'part-00000.parquet');
  }

  /** Per (hospital, month): curated rows, merged sketches and blood-pressure pairs (after finish). */
  *entries(): Generator<{ hospital: string; month: string; rows: number; sketches: Map<number, MeasureSketch>; bpPairs: number; bpViolations: number }> {
    const all = [...this.parts.values()].sort((a, b) => cmp(a.hospital, b.hospital) || cmp(a.month, b.month));
    for (const p of all) if (p.file) yield { hospital: p.hospital, month: p.month, rows: p.file.rowCount, sketches: p.sketches, bpPairs: p.bpPairs, bpViolations: p.bpViolations };
  }
}

const openFile = promisify(open);

/** Creates a file's directory and the file (truncated), on libuv's threads; resolves to its descriptor. */
async function openForWriting(path: string): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  return openFile(path, 'w');
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
