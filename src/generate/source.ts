/**
 * The clean-row source shared by both datasets: a stream of visits, each
 * emitting a handful of measures for one patient on one day. Subclasses say
 * which measures a visit contains and how each value is drawn.
 */

import type { Dataset, MeasureIndex } from '../registry.js';
import type { HospitalProfile, Population, Visit } from './population.js';
import { VisitScheduler } from './population.js';
import { Prng } from './prng.js';
import { QUOTE_UNIT, type Row } from './row.js';

export abstract class VisitSource {
  abstract readonly dataset: Dataset;
  protected readonly rng: Prng;
  protected readonly visit: Visit = { hospital: 0, patient: 0, day: 0 };
  private readonly scheduler: VisitScheduler;
  /** Measures still to emit for the current visit (registry indexes). */
  private readonly queue: Int32Array;
  private queued = 0;
  private at = 0;
  private patientId = '';

  constructor(
    protected readonly pop: Population,
    protected readonly index: MeasureIndex,
    private readonly dates: readonly string[],
    seed: number,
    stream: number,
  ) {
    this.rng = new Prng(seed, stream);
    this.scheduler = new VisitScheduler(pop, dates.length, this.rng);
    this.queue = new Int32Array(index.specs.length);
  }

  /** Adds to `queue` (via `push`) the measures taken at the visit in `this.visit`, in any order. */
  protected abstract planVisit(push: (measure: number) => void): void;

  /** Writes type, value, unit (and reference range) of one measure into `row`. */
  protected abstract fill(row: Row, measure: number, hospital: HospitalProfile): void;

  /** Fills `row` with the next clean record. */
  next(row: Row): void {
    if (this.at === this.queued) this.startVisit();
    const h = this.visit.hospital;
    const profile = this.pop.hospitals[h];
    const measure = this.queue[this.at++];
    row.hospital = profile.id;
    row.hospitalIndex = h;
    row.date = this.dates[this.visit.day];
    row.patient = this.patientId;
    row.measure = measure;
    row.quoteAll = profile.quoteAll;
    row.quoteMask = 0;
    row.ref = '';
    this.fill(row, measure, profile);
    if (!profile.quoteAll && profile.quoteRate > 0 && this.rng.float() < profile.quoteRate) {
      row.quoteMask = this.dataset === 'labs' && this.rng.chance(0.6) ? 2 : QUOTE_UNIT;
    }
  }

  private readonly push = (measure: number): void => {
    this.queue[this.queued++] = measure;
  };

  private startVisit(): void {
    do {
      this.scheduler.next(this.visit);
      this.queued = 0;
      this.at = 0;
      this.planVisit(this.push);
    } while (this.queued === 0);
    this.patientId = this.pop.patientId(this.visit.hospital, this.visit.patient);
  }
}

/** Clamps to [lo, hi]. */
export const clamp = (x: number, lo: number, hi: number): number => (x < lo ? lo : x > hi ? hi : x);
