/**
 * The set of row fingerprints seen so far in a run: an open-addressing hash
 * set over two Uint32Arrays (8 bytes a slot, grown at 70% load), so
 * duplicate detection costs about 11–23 bytes per distinct accepted row and
 * no per-row object. This is the one piece of state that grows with the
 * input (docs/PERFORMANCE.md).
 */
export class RowHashSet {
  /** Slot i is [2i] = hi, [2i + 1] = lo, adjacent so a probe touches one cache line. */
  private table: Uint32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 1 << 16) {
    let cap = 1;
    while (cap < initialCapacity) cap <<= 1;
    this.table = new Uint32Array(2 * cap);
    this.mask = cap - 1;
  }

  /** Adds (hi, lo); returns false when it was already present. */
  add(hi: number, lo: number): boolean {
    if (hi === 0 && lo === 0) lo = 1; // (0, 0) marks an empty slot
    const t = this.table;
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
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

  get bytes(): number {
    return this.table.byteLength;
  }

  private grow(): void {
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    this.table = new Uint32Array(2 * cap);
    this.mask = cap - 1;
    const t = this.table;
    for (let j = 0; j < old.length; j += 2) {
      const hi = old[j];
      const lo = old[j + 1];
      if (hi === 0 && lo === 0) continue;
      let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
      while (t[2 * i] !== 0 || t[2 * i + 1] !== 0) i = (i + 1) & this.mask;
      t[2 * i] = hi;
      t[2 * i + 1] = lo;
    }
  }
}
