/**
 * The accepted rows of one chunk as the worker collects them (input order,
 * growable typed columns), and their packing into a ChunkResult's columns
 * grouped by partition (a counting sort: stable, so input order is kept
 * within each partition).
 */
export class AcceptedRows {
  n = 0;
  part = new Uint32Array(1024);
  day = new Int32Array(1024);
  code = new Uint32Array(1024);
  value = new Float64Array(1024);
  ref: Float64Array;
  patient = new Uint32Array(1024);
  srcValue = new Uint32Array(1024);
  fp = new Uint32Array(2048);
  pos = new Uint32Array(2048);

  constructor(private readonly labs: boolean) {
    this.ref = new Float64Array(labs ? 2048 : 0);
  }

  /** Makes room for one more row; returns its index. */
  next(): number {
    if (this.n === this.day.length) this.grow();
    return this.n++;
  }

  private grow(): void {
    const cap = this.day.length * 2;
    const more = <T extends Uint32Array | Int32Array | Float64Array>(a: T, make: new (n: number) => T, k = 1): T => {
      const b = new make(cap * k);
      b.set(a as never);
      return b;
    };
    this.part = more(this.part, Uint32Array);
    this.day = more(this.day, Int32Array);
    this.code = more(this.code, Uint32Array);
    this.value = more(this.value, Float64Array);
    if (this.labs) this.ref = more(this.ref, Float64Array, 2);
    this.patient = more(this.patient, Uint32Array);
    this.srcValue = more(this.srcValue, Uint32Array);
    this.fp = more(this.fp, Uint32Array, 2);
    this.pos = more(this.pos, Uint32Array, 2);
  }

  /**
   * Exactly sized columns, views of one buffer (`spare` when it is big
   * enough, else a new one: see Block), with the rows grouped by partition,
   * the groups in `rank` order (rank[p] = position of partition p), and the
   * start of each group. The collector is empty after.
   */
  pack(nParts: number, rank: Uint32Array, spare: ArrayBuffer | null = null) {
    const n = this.n;
    const part = this.part;
    for (let i = 0; i < n; i++) part[i] = rank[part[i]];
    const refs = this.labs ? 2 * n : 0;
    // 8-byte columns (value, ref) first, then the 4-byte ones: fp and pos (2 a row), day, code, patient, srcValue, partStart.
    const block = new Block(8 * (n + refs) + 4 * (8 * n + nParts + 1), spare);
    const value = block.f64(n);
    const ref = block.f64(refs);
    const fp = block.u32(2 * n);
    const pos = block.u32(2 * n);
    const day = block.i32(n);
    const code = block.u32(n);
    const patient = block.u32(n);
    const srcValue = block.u32(n);
    const partStart = block.u32(nParts + 1).fill(0);
    for (let i = 0; i < n; i++) partStart[part[i] + 1]++;
    for (let p = 0; p < nParts; p++) partStart[p + 1] += partStart[p];
    const at = partStart.slice(0, nParts);
    for (let i = 0; i < n; i++) {
      const o = at[this.part[i]]++;
      day[o] = this.day[i];
      code[o] = this.code[i];
      value[o] = this.value[i];
      patient[o] = this.patient[i];
      srcValue[o] = this.srcValue[i];
      fp[2 * o] = this.fp[2 * i];
      fp[2 * o + 1] = this.fp[2 * i + 1];
      pos[2 * o] = this.pos[2 * i];
      pos[2 * o + 1] = this.pos[2 * i + 1];
      if (this.labs) {
        ref[2 * o] = this.ref[2 * i];
        ref[2 * o + 1] = this.ref[2 * i + 1];
      }
    }
    this.n = 0;
    return { partStart, day, code, value, ref, patient, srcValue, fp, pos };
  }
}

/**
 * Entries of a worker-local table that one chunk refers to, numbered in the
 * order the chunk first used them: what the chunk result carries as
 * `newPatients` / `newValues` for the coordinator to publish.
 */
export class ChunkRefs {
  private stamp = new Int32Array(1024).fill(-1);
  private local = new Uint32Array(1024);
  private ids: number[] = [];
  private chunk = 0;

  /** Starts a new chunk. */
  reset(chunk: number): void {
    this.chunk = chunk;
    this.ids.length = 0;
  }

  /** The chunk-local index of a table entry. */
  indexOf(id: number): number {
    if (id >= this.stamp.length) {
      const s = new Int32Array(Math.max(id + 1, this.stamp.length * 2)).fill(-1);
      s.set(this.stamp);
      this.stamp = s;
      const l = new Uint32Array(s.length);
      l.set(this.local);
      this.local = l;
    }
    if (this.stamp[id] !== this.chunk) {
      this.stamp[id] = this.chunk;
      this.local[id] = this.ids.length;
      this.ids.push(id);
    }
    return this.local[id];
  }

  /** The referenced entries (in first-use order) copied out of the table. */
  collect(table: { offsets: Uint32Array; pool: Uint8Array; hashes: Uint32Array; payload: Uint32Array; payloadWords: number }) {
    const ids = this.ids;
    let bytes = 0;
    for (const id of ids) bytes += table.offsets[id + 1] - table.offsets[id];
    const pool = new Uint8Array(bytes);
    const ends = new Uint32Array(ids.length);
    const hashes = new Uint32Array(ids.length);
    const w = table.payloadWords;
    const payload = new Uint32Array(ids.length * w);
    let o = 0;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      const s = table.offsets[id];
      const e = table.offsets[id + 1];
      // A byte loop: keys are a few bytes, and a subarray would be an allocation per entry.
      const src = table.pool;
      for (let i = s; i < e; i++) pool[o++] = src[i];
      ends[k] = o;
      hashes[k] = table.hashes[id];
      for (let j = 0; j < w; j++) payload[k * w + j] = table.payload[id * w + j];
    }
    return { count: ids.length, pool, ends, hashes, payload };
  }
}

/**
 * One buffer carved into a chunk result's columns, which travel, live and
 * die together: its size rounded up to a power of two, so the buffer the
 * coordinator sends back with a later chunk (src/merge/recycle.ts) usually
 * fits that chunk's columns too. Eight exactly sized arrays a chunk, left
 * to the coordinator's garbage collector, kept more memory resident (peak
 * RSS on the 10M-row file, with the chunk buffers also reused: 277–280 MiB
 * before, 262–271 MiB after).
 */
class Block {
  private readonly buffer: ArrayBuffer;
  private at = 0;

  /** @param spare a buffer that came back from the coordinator: used when it is big enough. */
  constructor(bytes: number, spare: ArrayBuffer | null) {
    let size = 1 << 16;
    while (size < bytes) size *= 2;
    this.buffer = spare !== null && spare.byteLength >= bytes ? spare : new ArrayBuffer(size);
  }

  f64(n: number): Float64Array {
    return new Float64Array(this.buffer, this.take(8 * n), n);
  }

  u32(n: number): Uint32Array {
    return new Uint32Array(this.buffer, this.take(4 * n), n);
  }

  i32(n: number): Int32Array {
    return new Int32Array(this.buffer, this.take(4 * n), n);
  }

  /** Bytes [at, at + n): callers take 8-byte columns first, so every view is aligned. */
  private take(n: number): number {
    const at = this.at;
    this.at += n;
    return at;
  }
}
