/**
 * Row fingerprints for exact-duplicate detection (SPEC §2: all fields equal
 * after trimming): 64 bits a row from 64-bit field hashes. Both of the
 * chunk processor's paths (src/transform/chunk.ts) build them from the same
 * field hashes, so equal rows get equal fingerprints whichever path read
 * them; the coordinator's duplicate filter (src/merge/dedupe.ts) consumes them.
 */
import { hash64 } from './bytetable.js';

/** hash64 of no bytes: an empty field's part of a fingerprint. */
export const EMPTY_HASH = new Uint32Array(2);
hash64(new Uint8Array(0), 0, 0, EMPTY_HASH);

/**
 * 64-bit row fingerprint from 64-bit field hashes (comp[2k], comp[2k + 1]
 * for field k in file order), position-dependent. Both paths hash a field
 * the same way — its trimmed UTF-8 bytes (`hash64`), or for the date its
 * day number (`dayHash`) — so equal rows get equal fingerprints whichever
 * path read them. With n rows the chance of a false duplicate is about
 * n²/2⁶⁵.
 */
export function fingerprint(comp: Uint32Array, nFields: number, out: Uint32Array, at: number): void {
  let x = 0x243f6a88;
  let y = 0x85a308d3;
  for (let k = 0; k < nFields; k++) {
    x = Math.imul(x ^ comp[2 * k], 0x9e3779b1);
    x = (x << 13) | (x >>> 19);
    y = Math.imul(y ^ comp[2 * k + 1], 0x85ebca77);
    y = (y << 17) | (y >>> 15);
  }
  out[at] = fmix(x ^ nFields);
  out[at + 1] = fmix(y + nFields);
}

/** The date's part of a fingerprint: a function of its day number (a valid ISO date has one spelling). */
export function dayHash(day: number, out: Uint32Array, at: number): void {
  out[at] = fmix(day ^ 0x6b43a9b5);
  out[at + 1] = fmix(Math.imul(day, 0x9e3779b1) ^ 0x1b873593);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
