/**
 * A 64-bit row fingerprint (two independent 32-bit hashes) over trimmed
 * fields, for exact-duplicate detection. With n rows the chance of any
 * false duplicate is about n²/2⁶⁵ (1e-6 at 10M rows).
 */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes the fields; writes the two halves into out[0], out[1]. */
export function hashFields(fields: readonly string[], out: Uint32Array): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let f = 0; f < fields.length; f++) {
    const s = fields[f];
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, 16777619);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 13;
    }
    // Field separator, so ("ab","c") and ("a","bc") differ.
    a = Math.imul(a ^ 0x1f, 16777619);
    b = Math.imul(b ^ 0x1f, 0x5bd1e995);
    b ^= b >>> 13;
  }
  out[0] = fmix(a ^ fields.length);
  out[1] = fmix(b + 0x27d4eb2f);
}
