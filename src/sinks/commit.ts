/**
 * Committing one hospital partition of a `process` run: its staged curated
 * files, quarantine, sketch file and manifest entry replace the previous
 * ones by rename, the manifest last. The scope is the run's --period month
 * (replace that month only) or `all` (replace the hospital's whole partition).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PipelineError } from '../errors.js';
import { DATASETS, type Dataset } from '../registry.js';
import type { MeasureSketch, MeasureSketchState } from '../sketch/measure.js';
import { readJsonFiles, removeIfEmpty, replacePath as replaceInto, writeJsonAtomic, writeJsonAtomicBy } from './fsutil.js';
import { withLock } from './lock.js';
import { HospitalManifestShape, PendingCommitShape } from './schemas.js';

export const SKETCH_VERSION = 1;

/** The sketch file of one hospital: per month, per measure, the mergeable state. */
export interface SketchFile {
  version: number;
  dataset: Dataset;
  hospital_id: string;
  months: Record<string, Record<string, MeasureSketchState>>;
}

/** The report-level checks counted over some rows: a whole input file's, or one hospital's of it. */
export interface CheckFacts {
  /** Per required column: the share of rows read whose cell is non-empty after trimming (null without rows). */
  completeness: Record<string, number | null>;
  defaultedReferenceRanges: number;
  bpPairs: number;
  bpViolations: number;
}

/** Facts about the whole input file, recorded with each of its hospitals. */
export interface FileFacts extends CheckFacts {
  blankLines: number;
  warnings: string[];
}

export interface ScopeEntry {
  input: string;
  /** The `process` run that committed it; its input manifest carries the same id (absent in older manifests). */
  run?: string;
  committed_at: string;
  rows: { read: number; accepted: number; rejected: number };
  rejects_by_rule: Record<string, number>;
  months: Record<string, number>;
  demo_key: boolean;
  file: FileFacts;
  /** The checks over this hospital's rows of the file (the report's per-hospital figures); absent in manifests written before it was. */
  hospital?: CheckFacts;
  previous_rows_read: number | null;
}

/** `_manifests/<dataset>/hospital_id=<H>.json` */
export interface HospitalManifest {
  version: number;
  dataset: Dataset;
  hospital_id: string;
  scopes: Record<string, ScopeEntry>;
}

export interface HospitalOutcome {
  hospital_id: string;
  rows: { read: number; accepted: number; rejected: number };
  months: string[];
}

export interface CommitInput {
  out: string;
  staging: string;
  dataset: Dataset;
  hospital: string;
  scope: string;
  input: string;
  run: string;
  counts: { read: number; accepted: number; rejected: number };
  rejectsByRule: Record<string, number>;
  months: { month: string; rows: number; sketches: Map<number, MeasureSketch> }[];
  measures: string[];
  keyIsDemo: boolean;
  file: FileFacts;
  hospitalFacts: CheckFacts;
}

export const manifestPath = (out: string, dataset: string, h: string) => join(out, '_manifests', dataset, `hospital_id=${h}.json`);
export const sketchPath = (out: string, dataset: string, h: string) => join(out, 'sketches', dataset, `hospital_id=${h}.json`);

function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

export async function commitHospital(c: CommitInput): Promise<HospitalOutcome> {
  const { out, staging, dataset, hospital: h, scope } = c;
  const lockPath = join(out, '_locks', `${dataset}.commit.${h}.lock`);
  return withLock(lockPath, `the commit of ${dataset} hospital ${h}`, () => {
    const stagedCurated = join(staging, 'curated', `hospital_id=${h}`);
    const curatedDir = join(out, 'curated', dataset, `hospital_id=${h}`);
    const stagedQuarantine = join(staging, 'quarantine', `hospital_id=${h}`);
    const quarantineDir = join(out, 'quarantine', dataset, `hospital_id=${h}`);
    const rejectsName = scope === 'all' ? 'rejects.csv' : `rejects-${scope}.csv`;

    // Sketches: this run's months replace the same months (or all months for scope `all`).
    const sPath = sketchPath(out, dataset, h);
    const prev = scope === 'all' ? null : readJson<SketchFile>(sPath);
    // Each month's entry is made when it is written (writeJsonAtomicBy): the months kept from the previous file as
    // they were read, this run's from its sketches.
    const months = new Map<string, () => Record<string, MeasureSketchState>>();
    if (prev?.version === SKETCH_VERSION) for (const [month, entry] of Object.entries(prev.months)) if (month !== scope) months.set(month, () => entry);
    for (const m of c.months) {
      months.set(m.month, () => {
        const entry: Record<string, MeasureSketchState> = {};
        for (const [i, s] of [...m.sketches.entries()].sort((a, b) => a[0] - b[0])) entry[c.measures[i]] = s.toJSON();
        return entry;
      });
    }
    const monthEntries = function* (): Generator<[string, Record<string, MeasureSketchState>]> {
      for (const month of [...months.keys()].sort()) yield [month, months.get(month)!()];
    };
    const sketch: SketchFile = { version: SKETCH_VERSION, dataset, hospital_id: h, months: {} };

    const mPath = manifestPath(out, dataset, h);
    const prevManifest = readJson<HospitalManifest>(mPath);
    const prevScope = prevManifest?.scopes?.[scope] ?? null;
    const manifest: HospitalManifest = {
      version: 1,
      dataset,
      hospital_id: h,
      scopes: scope === 'all' ? {} : { ...(prevManifest?.scopes ?? {}) },
    };
    manifest.scopes[scope] = {
      input: c.input,
      run: c.run,
      committed_at: new Date().toISOString(),
      rows: c.counts,
      rejects_by_rule: sortKeys(c.rejectsByRule),
      months: Object.fromEntries(c.months.map((m) => [m.month, m.rows])),
      demo_key: c.keyIsDemo,
      file: c.file,
      hospital: c.hospitalFacts,
      previous_rows_read: prevScope ? prevScope.rows.read : null,
    };

    // What the renames replace, and the temp files of the JSON writes, go to staging: a kill leaves them there.
    const scratch = join(staging, 'replaced');
    let replaced = 0;
    const replacePath = (from: string, to: string) => replaceInto(from, to, join(scratch, String(replaced++)));
    // Nothing is replaced unless what replaces it is all there: staging that went missing (removed by something
    // else) must fail the run, not remove the hospital's curated data under a manifest that counts its rows.
    const stagedData = scope === 'all' ? stagedCurated : join(stagedCurated, `month=${scope}`);
    const stagedRejects = scope === 'all' ? stagedQuarantine : join(stagedQuarantine, rejectsName);
    const missing = [c.counts.accepted > 0 && !existsSync(stagedData) ? stagedData : null, existsSync(stagedRejects) ? null : stagedRejects].filter((x) => x !== null);
    if (missing.length > 0) throw new PipelineError('HCP_ERR_INTERNAL', `Staged output of hospital ${h} is missing (${missing.join(', ')}); nothing of it was committed`, { file: missing[0] });
    // Data first, then sketches, then the manifest entry that vouches for them.
    if (scope === 'all') {
      // No accepted rows (e.g. the __invalid__ partition): no curated directory at all.
      if (existsSync(stagedCurated)) replacePath(stagedCurated, curatedDir);
      else rmSync(curatedDir, { recursive: true, force: true });
      replacePath(stagedQuarantine, quarantineDir);
    } else {
      const stagedMonth = join(stagedCurated, `month=${scope}`);
      const monthDir = join(curatedDir, `month=${scope}`);
      // No accepted row in the month this time: the month's previous curated data goes, as its sketch does below.
      if (existsSync(stagedMonth)) replacePath(stagedMonth, monthDir);
      else removeEmptied(monthDir, curatedDir);
      replacePath(join(stagedQuarantine, rejectsName), join(quarantineDir, rejectsName));
    }
    if (months.size > 0) writeJsonAtomicBy(sPath, sketch, 'months', monthEntries(), scratch);
    else rmSync(sPath, { force: true });
    writeJsonAtomic(mPath, manifest, scratch);
    return { hospital_id: h, rows: c.counts, months: c.months.map((m) => m.month) };
  });
}

/** Removes a month directory, then its hospital directory if that month was the last one. */
function removeEmptied(monthDir: string, hospitalDir: string): void {
  rmSync(monthDir, { recursive: true, force: true });
  removeIfEmpty(hospitalDir);
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}


/** `_manifests/<dataset>/inputs/<partition>.<scope>.json`: one input file's ledger and warnings. */
export interface InputManifest {
  input: string;
  /** The `process` run that wrote it, as in its hospitals' scope entries (absent in older manifests). */
  run?: string;
  scope: string;
  committed_at: string;
  rows: { read: number; accepted: number; rejected: number };
  blank_lines: number;
  hospitals: string[];
  warnings: string[];
}

/** Every hospital's manifest of a dataset, in hospital order. */
export function readManifests(out: string, dataset: Dataset): HospitalManifest[] {
  return readJsonFiles<HospitalManifest>(join(out, '_manifests', dataset), undefined, HospitalManifestShape).map((f) => f.value);
}

/**
 * What ties hospital entries to the input manifest of the run that committed them: the run id, or the
 * input path in manifests written before there was one.
 */
export const sourceOf = (e: { run?: string; input: string }): string => e.run ?? e.input;

export function writeInputManifest(out: string, dataset: Dataset, scope: string, name: string, m: InputManifest): void {
  writeJsonAtomic(join(out, '_manifests', dataset, 'inputs', `${name}.${scope}.json`), m);
}

/**
 * `_manifests/<dataset>/pending/<partition>.<scope>.json`: written before a `process` commits its first hospital,
 * removed once its input manifest is written. Left behind, it says the run stopped (killed, or a commit failed)
 * after committing some of its hospitals and not others: the output mixes its partitions with the previous run's.
 */
export interface PendingCommit {
  input: string;
  run: string;
  scope: string;
  hospitals: string[];
}

export const pendingPath = (out: string, dataset: Dataset, scope: string, name: string) => join(out, '_manifests', dataset, 'pending', `${name}.${scope}.json`);

/** Every commit under way or interrupted under `out`, by dataset. */
export function pendingCommits(out: string): (PendingCommit & { dataset: Dataset; file: string })[] {
  return DATASETS.flatMap((dataset) => {
    const dir = join(out, '_manifests', dataset, 'pending');
    return readJsonFiles<PendingCommit>(dir, undefined, PendingCommitShape).map((f) => ({ dataset, file: join(dir, f.name), ...f.value }));
  });
}
