/**
 * The set of row fingerprints seen so far in a run: an open-addressing hash
 * set over two Uint32Arrays (8 bytes a slot, grown at 70% load), so
 * duplicate detection costs about 11–23 bytes per distinct accepted row and
 * no per-row object. This is the one piece of state that grows with the
 * input (docs/PERFORMANCE.md).
 */
export class RowHashSet {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 1 << 16) {
    let cap = 1;
    while (cap < initialCapacity) cap <<= 1;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.mask = cap - 1;
  }

  /** Adds (hi, lo); returns false when it was already present. */
  add(hi: number, lo: number): boolean {
    if (hi === 0 && lo === 0) lo = 1; // (0, 0) marks an empty slot
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const h = this.hi[i];
      const l = this.lo[i];
      if (h === 0 && l === 0) break;
      if (h === hi && l === lo) return false;
      i = (i + 1) & this.mask;
    }
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.size++;
    if (this.size * 10 > this.hi.length * 7) this.grow();
    return true;
  }

  get bytes(): number {
    return this.hi.byteLength + this.lo.byteLength;
  }

  private grow(): void {
    const oldHi = this.hi;
    const oldLo = this.lo;
    const cap = oldHi.length * 2;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.mask = cap - 1;
    for (let j = 0; j < oldHi.length; j++) {
      const hi = oldHi[j];
      const lo = oldLo[j];
      if (hi === 0 && lo === 0) continue;
      let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
      while (this.hi[i] !== 0 || this.lo[i] !== 0) i = (i + 1) & this.mask;
      this.hi[i] = hi;
      this.lo[i] = lo;
    }
  }
}
