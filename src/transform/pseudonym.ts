/**
 * Pseudonymisation (SPEC §3): patient_key = first 32 hex chars of
 * HMAC-SHA256(key, `hospital_id|patient_id`). Patients repeat many times in a
 * month, so keys are cached (bounded) per worker.
 */
import { createHash, createHmac, hash } from 'node:crypto';

/** The built-in key used when HCP_PSEUDONYM_KEY is unset (demo only; `run` warns and the manifest records it). */
export const DEMO_KEY = 'hcp-demo-key-not-for-production';

export function patientKey(key: string, hospitalId: string, patientId: string): string {
  return createHmac('sha256', key).update(`${hospitalId}|${patientId}`).digest('hex').slice(0, 32);
}

/**
 * HMAC-SHA256 (RFC 2104) from two one-shot `crypto.hash` calls over
 * precomputed padded keys: about 4× cheaper than a createHmac object per
 * patient, and checked against createHmac in the tests.
 */
export function fastHmacHex(key: string): (message: string) => string {
  let k = Buffer.from(key, 'utf8');
  if (k.length > 64) k = createHash('sha256').update(k).digest();
  const ipad = Buffer.alloc(64, 0x36);
  const opad = Buffer.alloc(64, 0x5c);
  for (let i = 0; i < k.length; i++) {
    ipad[i] ^= k[i];
    opad[i] ^= k[i];
  }
  const inner = Buffer.alloc(64 + 1024);
  ipad.copy(inner);
  const outer = Buffer.alloc(64 + 32);
  opad.copy(outer);
  return (message) => {
    const len = inner.write(message, 64, 'utf8');
    if (64 + len >= inner.length) return createHmac('sha256', key).update(message).digest('hex');
    (hash('sha256', inner.subarray(0, 64 + len), 'buffer') as Buffer).copy(outer, 64);
    return hash('sha256', outer, 'hex') as string;
  };
}

/** A memoising pseudonymiser (per hospital); the cache is dropped when it reaches `limit` entries. */
export function pseudonymiser(key: string, limit = 200_000): (hospitalId: string, patientId: string) => string {
  const hmac = fastHmacHex(key);
  let cache = new Map<string, Map<string, string>>();
  let size = 0;
  return (hospitalId, patientId) => {
    let byPatient = cache.get(hospitalId);
    if (byPatient === undefined) cache.set(hospitalId, (byPatient = new Map()));
    let k = byPatient.get(patientId);
    if (k === undefined) {
      k = hmac(`${hospitalId}|${patientId}`).slice(0, 32);
      if (size >= limit) {
        cache = new Map([[hospitalId, (byPatient = new Map())]]);
        size = 0;
      }
      byPatient.set(patientId, k);
      size++;
    }
    return k;
  };
}
