/**
 * Exact-duplicate detection in bounded memory (docs/decisions/0006-dedupe.md).
 *
 * Every accepted row's 64-bit fingerprint goes through a blocked Bloom
 * filter of fixed size and is appended to a log file in staging. A row the
 * filter has not seen is new for certain; a row it may have seen (a true
 * duplicate, or now and then a false positive) is a *suspect*: the caller
 * holds it back, and after the last row `resolve` reads the log once to
 * find, for each suspect, whether its fingerprint occurs at an earlier row.
 * So the first occurrence is kept and later copies dropped exactly as with
 * an in-memory set of every fingerprint, but memory is the filter (at most
 * 16 MB) plus the suspects, not 8–16 bytes for every row of the file.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { writeFully } from '../sinks/fsutil.js';
import { freeNow } from './recycle.js';

/** Bits per block: one 64-byte cache line, so a row costs one memory access. */
const BLOCK_WORDS = 16;
/** Bits set per fingerprint. */
const K = 8;
/** Filter size bounds (bits): 1 Mbit .. 128 Mbit (16 MB). */
const MIN_BITS = 1 << 20;
const MAX_BITS = 1 << 27;
/**
 * The sizes HCP_DEDUPE_FILTER_BITS may ask for (src/config.ts): a power of two from one block to the largest
 * filter the engine sizes itself. Any other value used to fail the run as an internal error ("filter bits must
 * be a power of two", or "Invalid typed array length" for one too large to allocate).
 */
export const FILTER_BITS_RANGE = { min: 32 * BLOCK_WORDS, max: MAX_BITS } as const;
/** Rows whose filter blocks are loaded together before they are probed (see `scan`). */
const TOUCH_GROUP = 64;
/** Log buffer, in fingerprints. */
const LOG_BATCH = 1 << 16;

/** Filter bits for an expected row count: about 16 bits a row, a power of two, within the bounds. */
export function filterBits(expectedRows: number): number {
  let bits = MIN_BITS;
  while (bits < expectedRows * 16 && bits < MAX_BITS) bits *= 2;
  return bits;
}

export class DuplicateFilter {
  private readonly words: Int32Array;
  private readonly blockShift: number;
  private readonly fd: number;
  private readonly logBuf = new Uint32Array(2 * LOG_BATCH);
  private logFill = 0;
  /** Rows seen so far: the next row's sequence number. */
  private seq = 0;
  /** Suspects in arrival order: sequence numbers and fingerprints. */
  private suspectSeq: number[] = [];
  private suspectFp: number[] = [];
  /** Where `scan` keeps what its early loads read, so the compiler cannot drop them. */
  private touched = 0;

  /** @param bits filter size (a power of two, at least 512); @param logPath where the fingerprint log goes (staging). */
  constructor(bits: number, logPath: string) {
    const blocks = Math.max(1, bits / (32 * BLOCK_WORDS));
    if (!Number.isInteger(Math.log2(blocks))) throw new RangeError(`filter bits must be a power of two, got ${bits}`);
    this.words = new Int32Array(blocks * BLOCK_WORDS);
    this.blockShift = 32 - Math.log2(blocks);
    this.fd = openSync(logPath, 'w+');
  }

  /** Rows seen so far. */
  get rows(): number {
    return this.seq;
  }

  /**
   * Records the next row's fingerprint; true when the row is a suspect (may
   * repeat an earlier row: hold it until `resolve`), false when it is new.
   */
  suspect(hi: number, lo: number): boolean {
    const buf = this.logBuf;
    buf[this.logFill++] = hi;
    buf[this.logFill++] = lo;
    if (this.logFill === buf.length) this.flushLog();
    return this.probe(hi, lo);
  }

  /**
   * Records the fingerprints of rows [from, to) (`fp` holds hi, lo pairs),
   * in order, and appends the suspects' row indexes to `out`: the same
   * outcome as `suspect` row by row. Faster on a large filter: the blocks of
   * a group of rows are loaded together first, so their cache and TLB misses
   * overlap instead of stalling one row at a time.
   */
  scan(fp: Uint32Array, from: number, to: number, out: number[]): void {
    for (let i = from; i < to; ) {
      const n = Math.min(to - i, (this.logBuf.length - this.logFill) >>> 1);
      this.logBuf.set(fp.subarray(2 * i, 2 * (i + n)), this.logFill);
      this.logFill += 2 * n;
      if (this.logFill === this.logBuf.length) this.flushLog();
      i += n;
    }
    const w = this.words;
    for (let g = from; g < to; g += TOUCH_GROUP) {
      const end = Math.min(to, g + TOUCH_GROUP);
      let touched = 0;
      for (let i = g; i < end; i++) {
        // Both ends: the buffer is not 64-byte aligned, so a block may straddle two cache lines.
        const b = this.blockOf(fp[2 * i]);
        touched ^= w[b] ^ w[b + BLOCK_WORDS - 1];
      }
      this.touched ^= touched;
      for (let i = g; i < end; i++) if (this.probe(fp[2 * i], fp[2 * i + 1])) out.push(i);
    }
  }

  /** The first word of a fingerprint's block (from its high word). */
  private blockOf(hi: number): number {
    return this.blockShift === 32 ? 0 : (Math.imul(hi, 0x9e3779b1) >>> this.blockShift) * BLOCK_WORDS;
  }

  /** Sets a fingerprint's bits (the row after the last one seen); true when they were all set already (a suspect, recorded). */
  private probe(hi: number, lo: number): boolean {
    const seq = this.seq++;
    // Bit positions in the block by double hashing the low word; no branch on
    // the loaded words, so the loads of consecutive rows can overlap.
    const base = this.blockOf(hi);
    const step = Math.imul(hi, 0x85ebca6b) | 1;
    const w = this.words;
    let g = lo | 0;
    let missing = 0;
    for (let j = 0; j < K; j++) {
      const p = g >>> 23; // 9 bits: one of the block's 512
      const at = base + (p >>> 5);
      const bit = 1 << (p & 31);
      const x = w[at];
      missing |= ~x & bit;
      w[at] = x | bit;
      g = (g + step) | 0;
    }
    if (missing !== 0) return false;
    this.suspectSeq.push(seq);
    this.suspectFp.push(hi, lo);
    return true;
  }

  /**
   * After the last row: for each suspect, in arrival order, whether an
   * earlier row has the same fingerprint (1: a duplicate, drop it; 0: keep).
   * One sequential read of the log.
   */
  resolve(): Uint8Array {
    this.flushLog();
    const n = this.suspectSeq.length;
    const dup = new Uint8Array(n);
    if (n === 0) return dup;
    // The suspects' distinct fingerprints, with the first row that has each.
    const first = new FirstSeen(this.suspectFp);
    const chunk = new Uint32Array(2 * LOG_BATCH);
    const bytes = new Uint8Array(chunk.buffer);
    let seq = 0;
    for (let pos = 0; ; ) {
      const got = readSync(this.fd, bytes, 0, bytes.length, pos);
      if (got === 0) break;
      pos += got;
      const m = got >>> 3;
      for (let i = 0; i < m; i++, seq++) first.see(chunk[2 * i], chunk[2 * i + 1], seq);
    }
    if (seq !== this.seq) throw new Error(`fingerprint log holds ${seq} rows, expected ${this.seq}`);
    for (let s = 0; s < n; s++) dup[s] = first.firstOf(s) < this.suspectSeq[s] ? 1 : 0;
    return dup;
  }

  /** Closes the log and frees the filter now (`freeNow`): the filter is the largest buffer the encode phase no longer needs. */
  close(): void {
    closeSync(this.fd);
    freeNow([this.words.buffer as ArrayBuffer, this.logBuf.buffer as ArrayBuffer]);
  }

  private flushLog(): void {
    if (this.logFill === 0) return;
    const bytes = new Uint8Array(this.logBuf.buffer, 0, this.logFill * 4);
    writeFully(this.fd, bytes);
    this.logFill = 0;
  }
}

/** Open addressing over the suspects' fingerprints: the first row sequence number of each. */
class FirstSeen {
  private readonly mask: number;
  /** Slot → suspect index + 1 of the fingerprint's first suspect (0 = empty). */
  private readonly slots: Int32Array;
  /** Per suspect: the slot holding its fingerprint. */
  private readonly slotOf: Int32Array;
  private readonly first: Float64Array;

  constructor(private readonly fp: number[]) {
    const n = fp.length / 2;
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap);
    this.first = new Float64Array(cap).fill(Infinity);
    this.slotOf = new Int32Array(n);
    for (let s = 0; s < n; s++) {
      const i = this.find(fp[2 * s], fp[2 * s + 1]);
      if (this.slots[i] === 0) this.slots[i] = s + 1;
      this.slotOf[s] = i;
    }
  }

  /** The slot of a fingerprint: where it is, or the empty slot where it would go. */
  private find(hi: number, lo: number): number {
    const fp = this.fp;
    let i = (hi ^ Math.imul(lo, 0x9e3779b1)) & this.mask;
    for (;;) {
      const s = this.slots[i];
      if (s === 0 || (fp[2 * (s - 1)] === hi && fp[2 * (s - 1) + 1] === lo)) return i;
      i = (i + 1) & this.mask;
    }
  }

  see(hi: number, lo: number, seq: number): void {
    const i = this.find(hi, lo);
    if (this.slots[i] !== 0 && this.first[i] === Infinity) this.first[i] = seq;
  }

  firstOf(suspect: number): number {
    return this.first[this.slotOf[suspect]];
  }
}
