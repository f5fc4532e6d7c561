/**
 * Pseudonymisation (SPEC §3): patient_key = first 32 hex chars of
 * HMAC-SHA256(key, `hospital_id|patient_id`). Patients repeat many times in a
 * month, so keys are cached (bounded) per worker.
 */
import { createHmac } from 'node:crypto';

/** The built-in key used when HCP_PSEUDONYM_KEY is unset (demo only; `run` warns and the manifest records it). */
export const DEMO_KEY = 'hcp-demo-key-not-for-production';

export function patientKey(key: string, hospitalId: string, patientId: string): string {
  return createHmac('sha256', key).update(`${hospitalId}|${patientId}`).digest('hex').slice(0, 32);
}

/** A memoising pseudonymiser; the cache is dropped when it reaches `limit` entries. */
export function pseudonymiser(key: string, limit = 200_000): (hospitalId: string, patientId: string) => string {
  let cache = new Map<string, string>();
  return (hospitalId, patientId) => {
    const id = `${hospitalId}|${patientId}`;
    let k = cache.get(id);
    if (k === undefined) {
      k = createHmac('sha256', key).update(id).digest('hex').slice(0, 32);
      if (cache.size >= limit) cache = new Map();
      cache.set(id, k);
    }
    return k;
  };
}
