/** The JS HMAC-SHA256 (src/transform/sha256.ts) against Node's createHmac. */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hmacSha256, MAX_FAST_MESSAGE, wordsToHex } from '../src/transform/sha256.js';

const digest = (key: Uint8Array, msg: Uint8Array, words: number) => {
  const out = new Uint32Array(8);
  // The message sits inside a larger buffer, as a field does inside a chunk.
  const buf = new Uint8Array(msg.length + 6);
  buf.set(msg, 3);
  hmacSha256(key)(buf, 3, 3 + msg.length, out, 0, words);
  return wordsToHex(out, 0, words);
};

describe('hmacSha256 equals createHmac', () => {
  it('for keys of 0..100 bytes and messages of 0..120 bytes (one-block path and fallback)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 120 }), (key, msg) => {
        const want = createHmac('sha256', key).update(msg).digest('hex');
        expect(digest(key, msg, 8)).toBe(want);
        expect(digest(key, msg, 4)).toBe(want.slice(0, 32));
      }),
      { numRuns: 400 },
    );
  });

  it.each([0, 1, 54, MAX_FAST_MESSAGE, MAX_FAST_MESSAGE + 1, 63, 64, 65])('at the block edges: a %i-byte message', (len) => {
    const key = Buffer.from('edge-key');
    const msg = Buffer.alloc(len, 0x61);
    expect(digest(key, msg, 8)).toBe(createHmac('sha256', key).update(msg).digest('hex'));
  });

  it('with a string key as UTF-8 (the pseudonym key from the environment)', () => {
    const out = new Uint32Array(4);
    const msg = Buffer.from('H001|P0001');
    hmacSha256('clé-secrète')(msg, 0, msg.length, out, 0, 4);
    expect(wordsToHex(out, 0, 4)).toBe(createHmac('sha256', 'clé-secrète').update(msg).digest('hex').slice(0, 32));
  });
});
