/**
 * Who is measured, where and when: hospital profiles (size, unit habits,
 * exporter quirks), per-hospital patient IDs and a visit scheduler that
 * never gives a patient two visits on the same day.
 *
 * Uniqueness by construction: the k-th visit of patient p in hospital h
 * falls on day (offset(h, p) + k * stride_h) mod D, with stride_h coprime
 * to D, so a patient's first D visits land on D distinct days. A visit
 * emits each measure at most once, so (hospital, patient, date, measure) is
 * unique among clean rows and no clean row can be an exact duplicate of
 * another, without remembering past rows (memory stays flat).
 */

import { mix32, Prng, WeightedPicker } from './prng.js';

/** How a hospital's source system writes patient IDs. All match ^[A-Za-z0-9_-]{1,64}$. */
interface PatientIdStyle {
  readonly prefix: string;
  readonly digits: number;
}

const ID_STYLES: readonly PatientIdStyle[] = [
  { prefix: 'P', digits: 6 },
  { prefix: 'MRN', digits: 8 },
  { prefix: '', digits: 7 },
  { prefix: 'PT-', digits: 6 },
  { prefix: 'pat_', digits: 6 },
  { prefix: 'E', digits: 9 },
];

export interface HospitalProfile {
  readonly id: string;
  /** Relative number of rows (big and small hospitals). */
  readonly weight: number;
  readonly idStyle: PatientIdStyle;
  /** Share of vitals in Fahrenheit / pounds / inches. */
  readonly imperial: number;
  /** Share of lab results in SI units (mmol/L glucose, µmol/L creatinine, g/L haemoglobin…). */
  readonly si: number;
  /** The exporter quotes every text field ("H001","2024-01-05",…). */
  readonly quoteAll: boolean;
  /** Otherwise, share of rows with the unit or reference range quoted anyway. */
  readonly quoteRate: number;
  /** Reference ranges written `3.5 - 5.1` rather than `3.5-5.1`. */
  readonly refSpaced: boolean;
  /** Per lab test, which reference-range variant this laboratory prints (index into the test's variants). */
  readonly refVariant: number;
}

export interface PopulationOptions {
  seed: number;
  hospitals: number;
  patientsPerHospital: number;
  /** Number of distinct visit days (the dates of the generated months). */
  days: number;
  /** Upper bound of visits any one hospital may need, to size the patient pool. */
  maxVisitsPerHospital: number;
}

/** Hospitals and patients shared by both datasets: the same patients get vitals and labs. */
export class Population {
  readonly hospitals: readonly HospitalProfile[];
  readonly picker: WeightedPicker;
  /** Patients per hospital, enlarged when needed so every visit finds a free day. */
  readonly patients: number;
  private readonly seed: number;
  private readonly idModulus: number[];
  private readonly idMultiplier: number[];
  private readonly idOffset: number[];
  private readonly idDigits: number[];
  /** '' until computed; preallocated so the array stays in fast (non-dictionary) mode. */
  private readonly idCache: string[];

  constructor(o: PopulationOptions) {
    this.seed = o.seed >>> 0;
    const rng = new Prng(o.seed, 0x505);
    this.patients = Math.max(o.patientsPerHospital, Math.ceil(o.maxVisitsPerHospital / o.days) + 1);
    const hospitals: HospitalProfile[] = [];
    this.idModulus = [];
    this.idMultiplier = [];
    this.idOffset = [];
    this.idDigits = [];
    for (let h = 0; h < o.hospitals; h++) {
      const idStyle = ID_STYLES[h % ID_STYLES.length];
      hospitals.push({
        id: 'H' + String(h + 1).padStart(3, '0'),
        weight: 0.4 + rng.float() * 1.6,
        idStyle,
        imperial: rng.chance(0.3) ? 0.4 + rng.float() * 0.4 : rng.float() * 0.08,
        si: rng.chance(0.35) ? 0.6 + rng.float() * 0.35 : rng.float() * 0.1,
        quoteAll: h % 5 === 3,
        quoteRate: rng.float() * 0.02,
        refSpaced: rng.chance(0.4),
        refVariant: rng.u32(),
      });
      // Patient number = (p * A + B) mod 10^digits, a bijection on [0, 10^digits) when gcd(A, 10) = 1.
      let digits = idStyle.digits;
      while (10 ** digits < this.patients * 4) digits++;
      const modulus = 10 ** digits;
      let a = 1 + 2 * rng.int(50_000);
      if (a % 5 === 0) a += 2;
      this.idDigits.push(digits);
      this.idModulus.push(modulus);
      this.idMultiplier.push(a);
      this.idOffset.push(rng.int(Math.min(modulus, 2 ** 32)));
    }
    this.hospitals = hospitals;
    this.idCache = new Array<string>(o.hospitals * this.patients).fill('');
    this.picker = new WeightedPicker(hospitals.map((h) => h.weight));
  }

  /** The patient ID of patient index p (0 <= p < patients) in hospital h (cached: frequent patients recur). */
  patientId(h: number, p: number): string {
    const slot = h * this.patients + p;
    const cached = this.idCache[slot];
    if (cached !== '') return cached;
    const n = (p * this.idMultiplier[h] + this.idOffset[h]) % this.idModulus[h];
    const id = this.hospitals[h].idStyle.prefix + String(n).padStart(this.idDigits[h], '0');
    this.idCache[slot] = id;
    return id;
  }

  /** A stable uniform in [0, 1) describing patient (h, p); `k` selects the attribute. */
  trait(h: number, p: number, k: number): number {
    return mix32(mix32(mix32(this.seed ^ (k * 0x27d4eb2f)) ^ h) + p) / 4294967296;
  }

  /** A stable standard-normal attribute of patient (h, p). */
  traitNormal(h: number, p: number, k: number): number {
    const u = Math.max(this.trait(h, p, k), 1e-12);
    const v = this.trait(h, p, k + 1000);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

export interface Visit {
  hospital: number;
  patient: number;
  day: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Draws (hospital, patient, day) visits for one dataset, each (patient, day) at most once. */
export class VisitScheduler {
  private readonly counts: Uint32Array;
  private readonly strides: number[];

  constructor(
    private readonly pop: Population,
    private readonly days: number,
    private readonly rng: Prng,
  ) {
    this.counts = new Uint32Array(pop.hospitals.length * pop.patients);
    this.strides = pop.hospitals.map(() => {
      let s = 1 + rng.int(days);
      while (gcd(s, days) !== 1) s = (s % days) + 1;
      return s;
    });
  }

  /** Fills `v` with the next visit. */
  next(v: Visit): void {
    const pop = this.pop;
    const h = pop.picker.pick(this.rng);
    const n = pop.patients;
    // Skewed towards a few frequent patients (chronic care), most seen a few times.
    let p = Math.floor(n * this.rng.float() ** 1.6);
    const base = h * n;
    // A patient with a visit on every day is full: move on to the next one.
    // The pool is sized so that a free patient always exists.
    while (this.counts[base + p] >= this.days) p = p + 1 === n ? 0 : p + 1;
    const k = this.counts[base + p]++;
    const offset = Math.floor(pop.trait(h, p, 7) * this.days);
    v.hospital = h;
    v.patient = p;
    v.day = (offset + k * this.strides[h]) % this.days;
  }
}
