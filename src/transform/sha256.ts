/**
 * HMAC-SHA256 (RFC 2104, FIPS 180-4) in plain JavaScript, for short
 * messages. Node's one-shot `crypto.hash` costs about 4 µs a call on the
 * benchmark machine, almost all of it crossing into C++; a pseudonym needs
 * two hashes per distinct patient, and a 10M-row month has 500k patients in
 * each worker. Here the key's inner and outer pad states are compressed once,
 * so an HMAC over a message of up to 55 bytes is two compressions in JS.
 * Checked against `crypto.createHmac` in test/sha256.test.ts.
 */
import { createHash, createHmac } from 'node:crypto';

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** One SHA-256 compression of the 16-word block `w[0..15]` (w is scratch, 64 words) into `h`. */
function compress(h: Int32Array, w: Int32Array): void {
  for (let i = 16; i < 64; i++) {
    const a = w[i - 15];
    const b = w[i - 2];
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = h[0];
  let b = h[1];
  let c = h[2];
  let d = h[3];
  let e = h[4];
  let f = h[5];
  let g = h[6];
  let hh = h[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (hh + S1 + ch + K[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + b) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0;
  h[5] = (h[5] + f) | 0;
  h[6] = (h[6] + g) | 0;
  h[7] = (h[7] + hh) | 0;
}

/** The state after compressing one 64-byte pad block (key XOR pad). */
function padState(key: Uint8Array, pad: number): Int32Array {
  const h = Int32Array.from(IV);
  const w = new Int32Array(64);
  for (let i = 0; i < 16; i++) {
    let x = 0;
    for (let j = 0; j < 4; j++) x = (x << 8) | ((key[4 * i + j] ?? 0) ^ pad);
    w[i] = x;
  }
  compress(h, w);
  return h;
}

/** Messages longer than this need a second inner block; they take Node's HMAC. */
export const MAX_FAST_MESSAGE = 55;

export interface Hmac {
  /**
   * HMAC-SHA256 of bytes[start, end); writes the first `words` 32-bit words
   * of the digest (big-endian, as hex would print them) into out[at…].
   */
  (bytes: Uint8Array, start: number, end: number, out: Uint32Array, at: number, words?: number): void;
}

/** An HMAC-SHA256 function for one key, with its pad states precomputed. */
export function hmacSha256(key: string | Uint8Array): Hmac {
  let k: Uint8Array = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const keyBuf = Buffer.from(k);
  if (k.length > 64) k = createHash('sha256').update(k).digest();
  const inner = padState(k, 0x36);
  const outer = padState(k, 0x5c);
  const h = new Int32Array(8);
  const w = new Int32Array(64);
  return (bytes, start, end, out, at, words = 8) => {
    const len = end - start;
    if (len > MAX_FAST_MESSAGE) {
      const d = createHmac('sha256', keyBuf).update(bytes.subarray(start, end)).digest();
      for (let i = 0; i < words; i++) out[at + i] = d.readUInt32BE(4 * i);
      return;
    }
    // Inner hash: one block holding the message, 0x80, zeros and the bit length (64 + len bytes).
    w.fill(0, 0, 16);
    for (let i = 0; i < len; i++) w[i >> 2] |= bytes[start + i] << (24 - 8 * (i & 3));
    w[len >> 2] |= 0x80 << (24 - 8 * (len & 3));
    w[15] = (64 + len) * 8;
    h.set(inner);
    compress(h, w);
    // Outer hash: the 32-byte inner digest, padded (64 + 32 bytes in all).
    for (let i = 0; i < 8; i++) w[i] = h[i];
    w[8] = 0x80000000;
    w.fill(0, 9, 15);
    w[15] = (64 + 32) * 8;
    h.set(outer);
    compress(h, w);
    for (let i = 0; i < words; i++) out[at + i] = h[i] >>> 0;
  };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lowercase hex of `n` 32-bit words at words[at…]. */
export function wordsToHex(words: Uint32Array, at: number, n: number): string {
  let s = '';
  for (let i = at; i < at + n; i++) {
    const x = words[i];
    s += HEX[x >>> 24] + HEX[(x >>> 16) & 255] + HEX[(x >>> 8) & 255] + HEX[x & 255];
  }
  return s;
}
