/**
 * Pseudonymisation (SPEC §3): patient_key = first 32 hex chars of
 * HMAC-SHA256(key, `hospital_id|patient_id`). Workers compute it with
 * `hmacSha256` (src/transform/sha256.ts) once per patient per run, through
 * the shared patient dictionary (src/merge/dicts.ts).
 */

/** The built-in key used when HCP_PSEUDONYM_KEY is unset (demo only; `run` warns and the manifest records it). */
export const DEMO_KEY = 'hcp-demo-key-not-for-production';
