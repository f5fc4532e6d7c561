/**
 * The coordinator's per-partition state: accepted-row blocks waiting to be
 * encoded, the open Parquet file, the merged sketches and distinct patients
 * of each (hospital, month). Batches go to the pool as encode tasks; results
 * are applied strictly in dispatch order, so files and statistics do not
 * depend on which worker finished first.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Dataset } from '../registry.js';
import { MeasureSketch } from '../sketch/measure.js';
import type { Block, EncodeResult } from '../types.js';
import { BatchBuilder } from './batch.js';
import { FingerprintSet } from './dedupe.js';
import { PartitionFile } from '../sinks/parquet.js';
import type { Pool } from '../pool.js';

interface Partition {
  hospital: string;
  month: string;
  batch: BatchBuilder;
  file: PartitionFile | null;
  sketches: Map<number, MeasureSketch>;
  /** Per measure: the distinct patients seen so far, as a bitset over the hospital's patient ids. */
  patients: Map<number, Bitset>;
}

export class Partitions {
  private parts = new Map<string, Partition>();
  private inFlight: { part: Partition; result: Promise<EncodeResult> }[] = [];
  private buffered = 0;
  private patientIndex = new Map<string, FingerprintSet>();
  bpPairs = 0;
  bpViolations = 0;
  timings = { sketch: 0, parquet_encode: 0, write: 0 };

  constructor(
    private readonly dataset: Dataset,
    private readonly pool: Pool,
    private readonly stagingCurated: string,
    private readonly rowGroupRows: number,
    private readonly maxBufferedRows: number,
    private readonly maxInFlight: number,
  ) {}

  /** Adds a chunk's block for one partition (after duplicate removal). */
  async add(block: Block, drop: Uint32Array | null): Promise<void> {
    const key = `${block.hospital}\u0000${block.month}`;
    let p = this.parts.get(key);
    if (!p) {
      p = { hospital: block.hospital, month: block.month, batch: new BatchBuilder(block.hospital, block.month, this.dataset === 'labs'), file: null, sketches: new Map(), patients: new Map() };
      this.parts.set(key, p);
    }
    const before = p.batch.rows;
    p.batch.append(block, drop);
    this.buffered += p.batch.rows - before;
    if (p.batch.rows >= this.rowGroupRows) await this.flush(p);
    // Bound memory: flush the biggest partitions while too many rows wait.
    while (this.buffered > this.maxBufferedRows) {
      let biggest: Partition | null = null;
      for (const q of this.parts.values()) if (!biggest || q.batch.rows > biggest.batch.rows) biggest = q;
      if (!biggest || biggest.batch.rows === 0) break;
      await this.flush(biggest);
    }
  }

  private async flush(p: Partition): Promise<void> {
    if (p.batch.rows === 0) return;
    this.buffered -= p.batch.rows;
    const block = p.batch.take();
    const result = this.pool.run<EncodeResult>(() => ({ task: { kind: 'encode', dataset: this.dataset, block } }));
    result.catch(() => {}); // observed when applied
    this.inFlight.push({ part: p, result });
    while (this.inFlight.length > this.maxInFlight) await this.applyNext();
  }

  private async applyNext(): Promise<void> {
    const { part, result } = this.inFlight.shift()!;
    const r = await result;
    const t0 = performance.now();
    if (!part.file) {
      const dir = join(this.stagingCurated, `hospital_id=${part.hospital}`, `month=${part.month}`);
      mkdirSync(dir, { recursive: true });
      part.file = new PartitionFile(join(dir, 'part-00000.parquet'), this.dataset);
    }
    part.file.append(r.bytes, r.rowGroup, r.rows);
    this.timings.write += performance.now() - t0;
    this.timings.sketch += r.timings.sketch;
    this.timings.parquet_encode += r.timings.parquet_encode;
    for (const { measure, state, patients } of r.sketches) {
      const s = MeasureSketch.fromJSON(state);
      const have = part.sketches.get(measure);
      if (have) have.merge(s);
      else part.sketches.set(measure, s);
      let set = part.patients.get(measure);
      if (!set) part.patients.set(measure, (set = new Bitset()));
      // One index of 128-bit keys per hospital, a small bitset per (month, measure):
      // a set of keys per (month, measure) would cost 16+ bytes a patient each.
      let index = this.patientIndex.get(part.hospital);
      if (!index) this.patientIndex.set(part.hospital, (index = new FingerprintSet(4, 1024, true)));
      for (let at = 0; at < patients.length; at += 4) set.add(index.idOf(patients, at));
    }
    this.bpPairs += r.bpPairs;
    this.bpViolations += r.bpViolations;
  }

  /** Flushes everything, applies every pending result and closes the files. */
  async finish(): Promise<void> {
    const all = [...this.parts.values()].sort((a, b) => cmp(a.hospital, b.hospital) || cmp(a.month, b.month));
    for (const p of all) await this.flush(p);
    while (this.inFlight.length > 0) await this.applyNext();
    const t0 = performance.now();
    for (const p of all) {
      p.file?.close();
      for (const [m, set] of p.patients) p.sketches.get(m)!.nPatients = set.count();
      p.patients.clear();
    }
    this.timings.write += performance.now() - t0;
  }

  /** Drains pending work after a failure, closing files without footers. */
  async abandon(): Promise<void> {
    await Promise.allSettled(this.inFlight.map((x) => x.result));
    this.inFlight = [];
    for (const p of this.parts.values()) p.file?.abandon();
  }

  /** Per (hospital, month): curated rows and merged sketches (after finish). */
  *entries(): Generator<{ hospital: string; month: string; rows: number; sketches: Map<number, MeasureSketch> }> {
    const all = [...this.parts.values()].sort((a, b) => cmp(a.hospital, b.hospital) || cmp(a.month, b.month));
    for (const p of all) if (p.file) yield { hospital: p.hospital, month: p.month, rows: p.file.rowCount, sketches: p.sketches };
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);


/** A growable bitset with a population count. */
class Bitset {
  private words = new Uint32Array(8);
  add(i: number): void {
    const w = i >>> 5;
    if (w >= this.words.length) {
      const bigger = new Uint32Array(Math.max(w + 1, this.words.length * 2));
      bigger.set(this.words);
      this.words = bigger;
    }
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
}
