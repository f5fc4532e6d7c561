/**
 * A set of fixed-width fingerprints (2 or 4 uint32 words) in one open-
 * addressing table (grown at 70% load), with no per-entry object. Used for
 * exact-duplicate detection (64-bit row fingerprints: 8 bytes a slot, about
 * 11–23 bytes per distinct accepted row — the one piece of state that grows
 * with the input, docs/PERFORMANCE.md) and for distinct patients (the
 * 128-bit patient keys themselves, so the count is exact).
 */
export class FingerprintSet {
  /** Slot i holds words [w·i, w·i + w); adjacent, so a probe touches one cache line. */
  private table: Uint32Array;
  private mask: number;
  /** The all-zero fingerprint, which cannot live in the table (zero marks an empty slot). */
  private hasZero = false;
  size = 0;

  constructor(private readonly width: 2 | 4 = 2, initialCapacity = 1 << 10) {
    let cap = 1;
    while (cap < initialCapacity) cap <<= 1;
    this.table = new Uint32Array(width * cap);
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
    this.size++;
    if (this.size * 10 > (this.mask + 1) * 7) this.grow();
    return true;
  }

  /** Adds the fingerprint at words[at, at + width); returns false when it was already present. */
  add(words: ArrayLike<number>, at = 0): boolean {
    const w = this.width;
    const t = this.table;
    let zero = true;
    for (let k = 0; k < w; k++) if (words[at + k] !== 0) zero = false;
    if (zero) {
      if (this.hasZero) return false;
      this.hasZero = true;
      this.size++;
      return true;
    }
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
      if (empty) break;
      if (same) return false;
      i = (i + 1) & this.mask;
    }
    const s = w * i;
    for (let k = 0; k < w; k++) t[s + k] = words[at + k];
    this.size++;
    if (this.size * 10 > (this.mask + 1) * 7) this.grow();
    return true;
  }

  get bytes(): number {
    return this.table.byteLength;
  }

  private grow(): void {
    const w = this.width;
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    this.table = new Uint32Array(w * cap);
    this.mask = cap - 1;
    const t = this.table;
    for (let j = 0; j < old.length; j += w) {
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
    }
  }
}
