/**
 * The dictionaries the coordinator shares with the workers: every patient
 * (`hospital_id|patient_id` → dense number within its hospital + 128-bit
 * key) and every source value seen so far. The coordinator is the only
 * writer: it publishes the new entries a chunk brings, in chunk order, so
 * ids do not depend on which worker ran first. Workers key a patient (HMAC)
 * only when it is not published yet, so each patient is keyed about once
 * per run instead of once per worker, and one copy of the patient index
 * serves the pseudonyms, the Parquet dictionaries and `n_patients`.
 */
import { ByteTable } from '../transform/bytetable.js';
import { type NewEntries, PATIENT_WORDS, PENDING, type SharedDicts } from '../types.js';

export class Dictionaries {
  readonly patients: ByteTable;
  readonly values: ByteTable;
  /** Patients per hospital so far (the next dense number). */
  private perHospital = new Map<string, number>();
  private readonly payload = new Uint32Array(PATIENT_WORDS);
  /** Hospitals seen: their bytes (ids in order of first sight) and their names by id. */
  private readonly hospitalIds = new ByteTable(0);
  private readonly hospitalNames: string[] = [];

  /** @param expectedRows rows the input holds, roughly: sizes the tables so they rarely grow. */
  constructor(expectedRows: number) {
    this.patients = new ByteTable(PATIENT_WORDS, true, Math.max(1024, Math.min(1 << 20, expectedRows / 16)));
    this.values = new ByteTable(0, true, 4096);
  }

  get state(): SharedDicts {
    return { patients: this.patients.state, values: this.values.state };
  }

  /** Patients of a hospital so far. */
  patientCount(hospital: string): number {
    return this.perHospital.get(hospital) ?? 0;
  }

  /**
   * Publishes a chunk's new patients; returns each one's entry id (an entry
   * another chunk published in the meantime is found, not added twice).
   */
  publishPatients(e: NewEntries): Uint32Array {
    const ids = new Uint32Array(e.count);
    let start = 0;
    for (let k = 0; k < e.count; k++) {
      const end = e.ends[k];
      let id = this.patients.find(e.pool, start, end, e.hashes[k]);
      if (id < 0) {
        const hospital = this.hospitalOf(e.pool, start);
        const n = this.perHospital.get(hospital) ?? 0;
        this.perHospital.set(hospital, n + 1);
        this.payload[0] = n;
        for (let j = 0; j < 4; j++) this.payload[1 + j] = e.payload[4 * k + j];
        id = this.patients.add(e.pool, start, end, e.hashes[k], this.payload, 0);
      }
      ids[k] = id;
      start = end;
    }
    return ids;
  }

  /**
   * The hospital of a patient key (the bytes before its '|'): interned by
   * its bytes, so a new patient allocates nothing.
   */
  private hospitalOf(pool: Uint8Array, start: number): string {
    const bar = pool.indexOf(124, start);
    const id = this.hospitalIds.intern(pool, start, bar);
    if (this.hospitalIds.isNew) this.hospitalNames.push(Buffer.from(pool.buffer, pool.byteOffset + start, bar - start).toString('latin1'));
    return this.hospitalNames[id];
  }

  /** Publishes a chunk's new source values; returns their entry ids. */
  publishValues(e: NewEntries): Uint32Array {
    const ids = new Uint32Array(e.count);
    let start = 0;
    for (let k = 0; k < e.count; k++) {
      const end = e.ends[k];
      let id = this.values.find(e.pool, start, end, e.hashes[k]);
      if (id < 0) id = this.values.add(e.pool, start, end, e.hashes[k]);
      ids[k] = id;
      start = end;
    }
    return ids;
  }

  /** The dense number of a patient entry within its hospital. */
  denseId(entry: number): number {
    return this.patients.payload[entry * PATIENT_WORDS];
  }
}

/** Resolves a row reference: a published entry id, or PENDING | index into the chunk's new entries. */
export function resolve(ref: number, pending: Uint32Array): number {
  return ref >= PENDING ? pending[ref - PENDING] : ref;
}
