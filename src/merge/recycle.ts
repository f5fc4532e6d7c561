/**
 * Buffers that go round instead of being reallocated. A batch's columns
 * travel to a worker (transferred), and the worker sends them back with the
 * encoded row group; the next batch is read into them. The same for a
 * chunk's bytes (the next read goes into them) and a chunk result's columns
 * (they go back to a worker with the next chunk, src/transform/output.ts).
 * Without
 * that, every batch left a few MB dead in the worker until its next garbage
 * collection, which V8 starts for off-heap memory only every few tens of MB,
 * and the end of a file, when every partition's rows are encoded, peaked
 * higher than the rest of the run.
 */
import { MessageChannel } from 'node:worker_threads';
import type { ChunkResult, EncodeResult } from '../types.js';

type Typed = Uint8Array | Int32Array | Uint32Array | Float64Array;

/** The smallest buffer `freeNow` frees (smaller ones are left to the garbage collector). */
export const FREE_NOW_MIN_BYTES = 1 << 16;

/**
 * Gives buffers' memory back now instead of at the next full garbage
 * collection: they are transferred into a message on a channel that is
 * closed at once, and a message that is never delivered is dropped with
 * its contents. For large buffers that outlive their use by a phase of the
 * run (a buffer that has lived long enough sits in the old generation,
 * which V8 collects only now and then, so without this it is still
 * resident when the next phase peaks). The buffers are detached (length 0)
 * after. Buffers under 64 KiB are left to the collector (not worth it, and
 * Node's shared Buffer pool, 8 KiB under every small Buffer, must never be
 * detached), and so is anything that cannot be transferred.
 */
export function freeNow(buffers: readonly ArrayBuffer[]): void {
  const live = buffers.filter((b) => b.byteLength >= FREE_NOW_MIN_BYTES);
  if (live.length === 0) return;
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(null, live);
  } catch {
    /* not transferable: the garbage collector will free it */
  }
  port1.close();
  port2.close();
}

/** A typed-array constructor, as `take` needs it: fresh, or over a given buffer. */
export type TypedArrayType<T extends Typed> = { new (n: number): T; new (b: ArrayBuffer, at: number, n: number): T; BYTES_PER_ELEMENT: number };

export class BufferRecycler {
  private free: ArrayBuffer[] = [];

  /** @param max buffers kept at most (the rest are left to the garbage collector) */
  constructor(private readonly max: number) {}

  /** Buffers whose contents are no longer needed; those not kept are freed now (`freeNow`). */
  give(buffers: readonly ArrayBuffer[]): void {
    const extra: ArrayBuffer[] = [];
    for (const b of buffers) {
      if (b.byteLength === 0) continue;
      if (this.free.length < this.max) this.free.push(b);
      else extra.push(b);
    }
    freeNow(extra);
  }

  /** An array of `n` elements (contents undefined) over the smallest kept buffer big enough, or a fresh one. */
  take<T extends Typed>(make: TypedArrayType<T>, n: number): T {
    const bytes = n * make.BYTES_PER_ELEMENT;
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i].byteLength;
      if (size >= bytes && (best < 0 || size < this.free[best].byteLength)) best = i;
    }
    if (best < 0 || n === 0) return new make(n);
    const [buffer] = this.free.splice(best, 1);
    return new make(buffer, 0, n);
  }

  /** A kept buffer (the largest), whatever its use next, or null when none is kept. */
  takeAny(): ArrayBuffer | null {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) if (best < 0 || this.free[i].byteLength > this.free[best].byteLength) best = i;
    return best < 0 ? null : this.free.splice(best, 1)[0];
  }

  /** Frees every kept buffer now (`freeNow`): when nothing will be taken again. */
  clear(): void {
    freeNow(this.free);
    this.free = [];
  }

  /** Buffers kept. */
  get size(): number {
    return this.free.length;
  }
}

/**
 * Every buffer a worker's result carries (SharedArrayBuffers and empty
 * views aside): what the worker transfers back with it, and what the
 * coordinator may free once it has applied the result.
 */
export function resultBuffers(r: ChunkResult | EncodeResult): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  const add = (a: ArrayBufferView) => {
    if (a.byteLength > 0 && !(a.buffer instanceof SharedArrayBuffer)) seen.add(a.buffer as ArrayBuffer);
  };
  add(r.bytes);
  if (r.kind === 'chunk-result') {
    for (const a of [r.partStart, r.day, r.code, r.value, r.ref, r.patient, r.srcValue, r.fp, r.pos]) add(a);
    for (const e of [r.newPatients, r.newValues]) for (const a of [e.pool, e.ends, e.hashes, e.payload]) add(a);
    const j = r.rejects;
    for (const a of [j.line, j.hospital, j.codes, j.cells, j.cellEnds]) add(a);
  } else {
    for (const b of r.recycled) seen.add(b);
    for (const { words } of r.patientSets) add(words);
    for (const { state } of r.sketches) if (state.quantiles.kind === 'exact') for (const a of [state.quantiles.values, state.quantiles.counts]) if (ArrayBuffer.isView(a)) add(a);
  }
  return [...seen];
}
