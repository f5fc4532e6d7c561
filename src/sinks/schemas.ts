/**
 * The shapes of the JSON files `stats` and `report` read back from an output directory (manifests, input
 * manifests, pending-commit markers, sketches). A file that parses as JSON but is not what the engine wrote (a
 * hand edit, `null`, another tool's file of the same name) is reported as damaged, naming the file and the field,
 * instead of failing later as an internal TypeError. Fields beyond a shape's (added by later versions) pass: the
 * value returned is the file's own, not zod's stripped copy. The writers' types (./commit.ts, ../sketch/) must
 * satisfy these shapes: `WRITTEN` below does not compile when a writer stops writing a field a shape requires.
 */
import { z } from 'zod';
import { DATASETS } from '../registry.js';
import { PipelineError } from '../errors.js';
import type { HospitalManifest, InputManifest, PendingCommit, SketchFile } from './commit.js';

const num = z.number();
const Rows = z.object({ read: num, accepted: num, rejected: num });
const CheckFacts = z.object({
  completeness: z.record(z.string(), num.nullable()),
  defaultedReferenceRanges: num,
  bpPairs: num,
  bpViolations: num,
});
const ScopeEntry = z.object({
  input: z.string(),
  run: z.string().optional(),
  committed_at: z.string(),
  rows: Rows,
  rejects_by_rule: z.record(z.string(), num),
  months: z.record(z.string(), num),
  demo_key: z.boolean(),
  file: CheckFacts.extend({ blankLines: num, warnings: z.array(z.string()) }),
  hospital: CheckFacts.optional(),
  previous_rows_read: num.nullable(),
});

/** `_manifests/<dataset>/hospital_id=<H>.json` */
export const HospitalManifestShape = z.object({
  version: num,
  dataset: z.enum(DATASETS),
  hospital_id: z.string(),
  scopes: z.record(z.string(), ScopeEntry),
});

/** `_manifests/<dataset>/inputs/<name>.<scope>.json` */
export const InputManifestShape = z.object({
  input: z.string(),
  run: z.string().optional(),
  scope: z.string(),
  committed_at: z.string(),
  rows: Rows,
  blank_lines: num,
  hospitals: z.array(z.string()),
  warnings: z.array(z.string()),
});

/** `_manifests/<dataset>/pending/<name>.<scope>.json` */
export const PendingCommitShape = z.object({ input: z.string(), run: z.string(), scope: z.string(), hospitals: z.array(z.string()) });

// The sketches' number arrays are checked as arrays only: checking each element cost ~30 ms a `stats` at 1M rows.
// (Typed arrays are the in-memory form that crosses threads; files hold plain arrays.)
const nums = z.custom<number[] | Float64Array>((v) => Array.isArray(v), { message: 'expected array' });
const MeasureSketchState = z.object({
  moments: z.object({ n: num, mean: num, m2: num, meanError: num.optional() }),
  min: num.nullable(),
  max: num.nullable(),
  nLow: num,
  nHigh: num,
  nPatients: num,
  quantiles: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('exact'), values: nums, counts: nums }),
    z.object({ kind: z.literal('tdigest'), digest: z.object({ compression: num, mean: nums, weight: nums, min: nums, max: nums }) }),
  ]),
});

/** `sketches/<dataset>/hospital_id=<H>.json`, of the current version (older ones are refused by version first). */
export const SketchFileShape = z.object({
  version: num,
  dataset: z.enum(DATASETS),
  hospital_id: z.string(),
  months: z.record(z.string(), z.record(z.string(), MeasureSketchState)),
});

/** `_manifests/stats.json`: what the last `stats` merged (src/sinks/stats.ts). */
export const StatsSourcesShape = z.object({ version: num, datasets: z.partialRecord(z.enum(DATASETS), z.array(z.string())) });

/** Whether what a writer's type `T` holds passes shape `S` (a compile-time check: true or a type error). */
type Passes<T, S extends z.ZodType> = T extends z.infer<S> ? true : never;
export const WRITTEN: [
  Passes<HospitalManifest, typeof HospitalManifestShape>,
  Passes<InputManifest, typeof InputManifestShape>,
  Passes<PendingCommit, typeof PendingCommitShape>,
  Passes<SketchFile, typeof SketchFileShape>,
] = [true, true, true, true];

/** `value` as read from `file`, or HCP_ERR_INTERNAL naming the file and the first field that is not as written. */
export function checkShape<T>(shape: z.ZodType, value: unknown, file: string): T {
  const r = shape.safeParse(value);
  if (r.success) return value as T;
  const issue = r.error.issues[0];
  const at = issue.path.length ? ` at ${issue.path.join('.')}` : '';
  throw new PipelineError('HCP_ERR_INTERNAL', `${file} is not a file this engine wrote (${issue.message}${at}): the output directory is damaged`, { file });
}
