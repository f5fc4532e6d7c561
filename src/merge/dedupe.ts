/**
 * A set of fixed-width fingerprints (2 or 4 uint32 words) in one open-
 * addressing table (grown at 70% load), with no per-entry object. Used for
 * exact-duplicate detection (64-bit row fingerprints: 8 bytes a slot, about
 * 11–23 bytes per distinct accepted row — the one piece of state that grows
 * with the input, docs/PERFORMANCE.md) and, with dense ids, as the index of a
 * hospital's patients (their 128-bit keys themselves, so counts are exact).
 */
export class FingerprintSet {
  /** Slot i holds words [w·i, w·i + w); adjacent, so a probe touches one cache line. */
  private table: Uint32Array;
  /** Dense id of the entry in each slot (only when built `withIds`). */
  private ids: Uint32Array | null;
  private mask: number;
  /** The all-zero fingerprint, which cannot live in the table (zero marks an empty slot). */
  private zeroId = -1;
  size = 0;

  constructor(private readonly width: 2 | 4 = 2, initialCapacity = 1 << 10, withIds = false) {
    let cap = 1;
    while (cap < initialCapacity) cap <<= 1;
    this.table = new Uint32Array(width * cap);
    this.ids = withIds ? new Uint32Array(cap) : null;
    this.mask = cap - 1;
  }

  /** `add` for width 2, without the generic word loops: the per-row duplicate check. */
  add2(hi: number, lo: number): boolean {
    if (hi === 0 && lo === 0) return this.add([0, 0]);
    const t = this.table;
    let i = (hi ^ Math.imul(lo, 0x9e3779b1)) & this.mask;
    for (;;) {
      const h = t[2 * i];
      const l = t[2 * i + 1];
      if (h === 0 && l === 0) break;
      if (h === hi && l === lo) return false;
      i = (i + 1) & this.mask;
    }
    t[2 * i] = hi;
    t[2 * i + 1] = lo;
    if (this.ids) this.ids[i] = this.size;
    this.inserted();
    return true;
  }

  /** Adds the fingerprint at words[at, at + width); returns false when it was already present. */
  add(words: ArrayLike<number>, at = 0): boolean {
    if (this.isZero(words, at)) {
      if (this.zeroId >= 0) return false;
      this.zeroId = this.size++;
      return true;
    }
    const s = this.probe(words, at);
    if (s >= 0) return false;
    this.insert(-1 - s, words, at);
    return true;
  }

  /** The dense id (0, 1, 2… in insertion order) of a fingerprint, added if new. Needs `withIds`. */
  idOf(words: ArrayLike<number>, at = 0): number {
    if (this.isZero(words, at)) {
      if (this.zeroId < 0) this.zeroId = this.size++;
      return this.zeroId;
    }
    const s = this.probe(words, at);
    if (s >= 0) return this.ids![s];
    const id = this.size;
    this.insert(-1 - s, words, at);
    return id;
  }

  get bytes(): number {
    return this.table.byteLength + (this.ids?.byteLength ?? 0);
  }

  private isZero(words: ArrayLike<number>, at: number): boolean {
    for (let k = 0; k < this.width; k++) if (words[at + k] !== 0) return false;
    return true;
  }

  /** The slot holding the fingerprint, or −1 − (the free slot where it would go). */
  private probe(words: ArrayLike<number>, at: number): number {
    const w = this.width;
    const t = this.table;
    let i = (words[at] ^ Math.imul(words[at + 1], 0x9e3779b1)) & this.mask;
    for (;;) {
      const s = w * i;
      let empty = true;
      let same = true;
      for (let k = 0; k < w; k++) {
        const v = t[s + k];
        if (v !== 0) empty = false;
        if (v !== words[at + k]) same = false;
      }
      if (empty) return -1 - i;
      if (same) return i;
      i = (i + 1) & this.mask;
    }
  }

  /** Writes the fingerprint (and its id, the current size) into a free slot. */
  private insert(slot: number, words: ArrayLike<number>, at: number): void {
    const w = this.width;
    for (let k = 0; k < w; k++) this.table[w * slot + k] = words[at + k];
    if (this.ids) this.ids[slot] = this.size;
    this.inserted();
  }

  /** Counts an insertion; grows the table (ids move with their entries) at 70% load. */
  private inserted(): void {
    this.size++;
    if (this.size * 10 > (this.mask + 1) * 7) this.grow();
  }

  private grow(): void {
    const w = this.width;
    const old = this.table;
    const oldIds = this.ids;
    const cap = (this.mask + 1) * 2;
    this.table = new Uint32Array(w * cap);
    this.ids = oldIds ? new Uint32Array(cap) : null;
    this.mask = cap - 1;
    const t = this.table;
    for (let j = 0, slot = 0; j < old.length; j += w, slot++) {
      let empty = true;
      for (let k = 0; k < w; k++) if (old[j + k] !== 0) empty = false;
      if (empty) continue;
      let i = (old[j] ^ Math.imul(old[j + 1], 0x9e3779b1)) & this.mask;
      for (;;) {
        let free = true;
        for (let k = 0; k < w; k++) if (t[w * i + k] !== 0) free = false;
        if (free) break;
        i = (i + 1) & this.mask;
      }
      for (let k = 0; k < w; k++) t[w * i + k] = old[j + k];
      if (oldIds) this.ids![i] = oldIds[slot];
    }
  }
}
