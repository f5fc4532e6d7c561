/**
 * A table from short byte strings to dense ids (0, 1, 2… in insertion
 * order), with a few 32-bit payload words per entry. No object or string is
 * made per entry: keys live in one byte pool, everything else in typed
 * arrays, so the hot loop interns a field straight from the chunk's bytes.
 *
 * Two uses:
 * - worker-local interning (rule lookups, chunk dictionaries): plain
 *   ArrayBuffers, grown in place;
 * - dictionaries shared with the workers (patients and their keys, source
 *   values): SharedArrayBuffers with one writer, the coordinator. Readers
 *   probe them while the writer adds entries: an entry's bytes, hash and
 *   payload are written first and its slot last (`Atomics.store`), and a
 *   reader only follows a slot it has seen filled. Growing allocates new
 *   buffers and the old ones are never written again, so a reader holding
 *   an old `TableState` sees a consistent, smaller table.
 */

/** The buffers of a table: what crosses to a worker (SharedArrayBuffers are shared, not copied). */
export interface TableState {
  readonly slots: ArrayBufferLike;
  readonly hashes: ArrayBufferLike;
  readonly offsets: ArrayBufferLike;
  readonly pool: ArrayBufferLike;
  readonly payload: ArrayBufferLike;
  readonly payloadWords: number;
  /** Entries when the state was taken (readers never need it; kept for checks). */
  readonly size: number;
}

/**
 * Two independent 32-bit hashes of bytes[start, end) in one pass: out[0] is
 * `hashBytes` (FNV-1a, fmix32), out[1] a multiply-xorshift lane. Together,
 * a 64-bit field hash (row fingerprints, src/transform/chunk.ts).
 */
export function hash64(bytes: Uint8Array, start: number, end: number, out: Uint32Array, at = 0): void {
  let h = 0x811c9dc5;
  let y = 0x9747b28c;
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    h = Math.imul(h ^ c, 0x01000193);
    y = Math.imul(y ^ c, 0x5bd1e995);
    y ^= y >>> 13;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  out[at] = (h ^ (h >>> 16)) >>> 0;
  y = Math.imul(y ^ (end - start), 0x27d4eb2f);
  y ^= y >>> 15;
  out[at + 1] = Math.imul(y, 0x165667b1) >>> 0;
}

/** FNV-1a over bytes[start, end), finished with murmur3's fmix32. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const nextPow2 = (n: number) => {
  let c = 16;
  while (c < n) c *= 2;
  return c;
};

export class ByteTable {
  private slots: Int32Array;
  private mask: number;
  hashes: Uint32Array;
  /** offsets[id] … offsets[id + 1]: the key's bytes in `pool`. */
  offsets: Uint32Array;
  pool: Uint8Array;
  payload: Uint32Array;
  size = 0;

  /**
   * @param payloadWords 32-bit words stored with each entry
   * @param shared allocate SharedArrayBuffers (one writer, many readers)
   */
  constructor(
    readonly payloadWords: number,
    private readonly shared = false,
    expected = 64,
    private readonly readOnly = false,
  ) {
    const entries = nextPow2(expected);
    this.slots = new Int32Array(this.alloc(4 * entries * 2));
    this.mask = entries * 2 - 1;
    this.hashes = new Uint32Array(this.alloc(4 * entries));
    this.offsets = new Uint32Array(this.alloc(4 * (entries + 1)));
    this.pool = new Uint8Array(this.alloc(entries * 16));
    this.payload = new Uint32Array(this.alloc(4 * Math.max(1, entries * payloadWords)));
  }

  /** A read-only view of a table another thread writes. */
  static view(state: TableState): ByteTable {
    const t = new ByteTable(state.payloadWords, false, 16, true);
    t.slots = new Int32Array(state.slots);
    t.mask = t.slots.length - 1;
    t.hashes = new Uint32Array(state.hashes);
    t.offsets = new Uint32Array(state.offsets);
    t.pool = new Uint8Array(state.pool);
    t.payload = new Uint32Array(state.payload);
    t.size = state.size;
    return t;
  }

  get state(): TableState {
    return {
      slots: this.slots.buffer,
      hashes: this.hashes.buffer,
      offsets: this.offsets.buffer,
      pool: this.pool.buffer,
      payload: this.payload.buffer,
      payloadWords: this.payloadWords,
      size: this.size,
    };
  }

  /** Bytes held (all buffers). */
  get bytes(): number {
    return this.slots.byteLength + this.hashes.byteLength + this.offsets.byteLength + this.pool.byteLength + this.payload.byteLength;
  }

  private alloc(n: number): ArrayBuffer | SharedArrayBuffer {
    return this.shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n);
  }

  /** The id of bytes[start, end) (hash `h` = hashBytes of it), or −1. */
  find(bytes: Uint8Array, start: number, end: number, h: number): number {
    const slots = this.slots;
    const len = end - start;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const v = slots[i];
      if (v === 0) return -1;
      const id = v - 1;
      if (this.hashes[id] !== h) continue;
      const at = this.offsets[id];
      if (this.offsets[id + 1] - at !== len) continue;
      const pool = this.pool;
      let k = 0;
      while (k < len && pool[at + k] === bytes[start + k]) k++;
      if (k === len) return id;
    }
  }

  /** The id of bytes[start, end), added (with zero payload) when new. `isNew` tells which. */
  intern(bytes: Uint8Array, start: number, end: number, h = hashBytes(bytes, start, end)): number {
    const found = this.find(bytes, start, end, h);
    if (found >= 0) {
      this.isNew = false;
      return found;
    }
    this.isNew = true;
    return this.add(bytes, start, end, h);
  }

  /** Set by `intern`: whether its last call added the entry. */
  isNew = false;

  /** Direct-mapped cache for `internCached`: slot → id + 1. */
  private cache: Int32Array | null = null;

  /**
   * `intern` with a small direct-mapped cache in front, keyed by the
   * length and three bytes: a hit costs one compare of the bytes instead of
   * hashing them. For worker-local tables of few distinct, repeated keys
   * (measure names, units, hospitals, source values).
   */
  internCached(bytes: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (len === 0) return this.intern(bytes, start, end);
    const cache = (this.cache ??= new Int32Array(1024));
    const k = (len * 31 + bytes[start] * 7 + bytes[end - 1] * 3 + bytes[start + (len >> 1)]) & 1023;
    const id = cache[k] - 1;
    if (id >= 0) {
      const at = this.offsets[id];
      if (this.offsets[id + 1] - at === len) {
        const pool = this.pool;
        let i = 0;
        while (i < len && pool[at + i] === bytes[start + i]) i++;
        if (i === len) {
          this.isNew = false;
          return id;
        }
      }
    }
    const found = this.intern(bytes, start, end);
    cache[k] = found + 1;
    return found;
  }

  /**
   * Adds bytes[start, end) as a new entry (the caller knows it is absent),
   * with its payload words copied from payload[payloadAt…] when given:
   * written before the entry is published, as readers of a shared table
   * may see it at once.
   */
  add(bytes: Uint8Array, start: number, end: number, h: number, payload: ArrayLike<number> | null = null, payloadAt = 0): number {
    if (this.readOnly) throw new Error('ByteTable: read-only view');
    const id = this.size;
    if ((id + 1) * 2 > this.slots.length || id + 1 >= this.hashes.length) this.grow();
    const len = end - start;
    const at = this.offsets[id];
    if (at + len > this.pool.length) this.grow(at + len);
    const pool = this.pool;
    for (let i = 0; i < len; i++) pool[at + i] = bytes[start + i];
    this.offsets[id + 1] = at + len;
    this.hashes[id] = h;
    if (payload) for (let k = 0; k < this.payloadWords; k++) this.payload[id * this.payloadWords + k] = payload[payloadAt + k];
    this.size = id + 1;
    this.publish(h, id);
    return id;
  }

  /** Whether entry `id` is bytes[start, end). */
  equals(id: number, bytes: Uint8Array, start: number, end: number): boolean {
    const at = this.offsets[id];
    const len = end - start;
    if (this.offsets[id + 1] - at !== len) return false;
    const pool = this.pool;
    for (let i = 0; i < len; i++) if (pool[at + i] !== bytes[start + i]) return false;
    return true;
  }

  /** Copies the key of `id` into `out` at `at`; returns its length. */
  keyInto(id: number, out: Uint8Array, at: number): number {
    const s = this.offsets[id];
    const e = this.offsets[id + 1];
    out.set(this.pool.subarray(s, e), at);
    return e - s;
  }

  /** The key of `id` decoded as UTF-8. */
  keyString(id: number): string {
    return Buffer.from(this.pool.buffer, this.pool.byteOffset + this.offsets[id], this.offsets[id + 1] - this.offsets[id]).toString('utf8');
  }

  /**
   * Empties the table (keeps its capacity). Not for shared tables. The
   * used payload is zeroed too: entries added after start from a zero
   * payload, as in a new table (`intern` and `add` without a payload rely
   * on it).
   */
  clear(): void {
    this.slots.fill(0);
    this.cache?.fill(0);
    this.payload.fill(0, 0, this.size * this.payloadWords);
    this.size = 0;
  }

  private publish(h: number, id: number): void {
    const slots = this.slots;
    let i = h & this.mask;
    while (slots[i] !== 0) i = (i + 1) & this.mask;
    if (this.shared) Atomics.store(slots, i, id + 1);
    else slots[i] = id + 1;
  }

  /**
   * Reallocates every buffer, with room for more entries and at least
   * `poolBytes` of keys. Always all of them: a shared table's readers may
   * hold the old buffers, which must not change under them any more.
   */
  private grow(poolBytes = this.pool.length): void {
    const entries = this.size + 1 >= this.hashes.length || (this.size + 1) * 2 > this.slots.length ? this.hashes.length * 2 : this.hashes.length;
    let poolSize = this.pool.length;
    while (poolSize < poolBytes) poolSize *= 2;
    const copy = <T extends Uint32Array | Uint8Array>(a: T, n: number, make: (b: ArrayBuffer | SharedArrayBuffer) => T): T => {
      const b = make(this.alloc(n));
      b.set(a as never);
      return b;
    };
    this.hashes = copy(this.hashes, 4 * entries, (b) => new Uint32Array(b));
    this.offsets = copy(this.offsets, 4 * (entries + 1), (b) => new Uint32Array(b));
    this.payload = copy(this.payload, 4 * Math.max(1, entries * this.payloadWords), (b) => new Uint32Array(b));
    this.pool = copy(this.pool, poolSize, (b) => new Uint8Array(b));
    this.slots = new Int32Array(this.alloc(4 * entries * 2));
    this.mask = entries * 2 - 1;
    for (let id = 0; id < this.size; id++) this.publish(this.hashes[id], id);
  }
}
