import { describe, expect, it } from 'vitest';
import { SKETCH_VERSION, type HospitalManifest, type InputManifest, type PendingCommit, type SketchFile } from '../src/sinks/commit.js';
import { checkShape, HospitalManifestShape, InputManifestShape, PendingCommitShape, SketchFileShape, StatsSourcesShape } from '../src/sinks/schemas.js';
import { MeasureSketch } from '../src/sketch/measure.js';
import { expectErrorCodeSync } from './helpers.js';

/** As a file holds it: through JSON and back. */
const json = <T>(v: T): unknown => JSON.parse(JSON.stringify(v));

const sketchOf = (values: number[]) => {
  const s = new MeasureSketch();
  for (const v of values) s.add(v, 0);
  s.nPatients = values.length;
  return s.toJSON();
};
const sketchFile = (months: SketchFile['months']): SketchFile => ({ version: SKETCH_VERSION, dataset: 'vitals', hospital_id: 'H001', months });

const scope = {
  input: '/in/vitals.csv',
  committed_at: '2024-12-31T00:00:00.000Z',
  rows: { read: 3, accepted: 2, rejected: 1 },
  rejects_by_rule: { 'value.invalid': 1 },
  months: { '2024-01': 2 },
  demo_key: false,
  file: { completeness: { hospital_id: 1, value: null }, defaultedReferenceRanges: 0, bpPairs: 0, bpViolations: 0, blankLines: 0, warnings: [] },
  previous_rows_read: null,
};
const manifest = (extra: object = {}): HospitalManifest => ({ version: 1, dataset: 'labs', hospital_id: '__invalid__', scopes: { all: { ...scope, ...extra } } });
const input: InputManifest = { input: '/in/vitals.csv', scope: '2024-01', committed_at: scope.committed_at, rows: scope.rows, blank_lines: 0, hospitals: ['H001'], warnings: [] };
const pending: PendingCommit = { input: '/in/vitals.csv', run: 'r1', scope: 'all', hospitals: ['H001', 'H002'] };

describe('what the engine writes passes its own shapes', () => {
  it.each<[string, Parameters<typeof checkShape>[0], unknown]>([
    ['a manifest written before runs had ids and per-hospital checks', HospitalManifestShape, manifest()],
    ['a manifest with a run id, per-hospital checks and a later field', HospitalManifestShape, manifest({ run: 'r1', hospital: { completeness: {}, defaultedReferenceRanges: 1, bpPairs: 2, bpViolations: 0 }, future: [1] })],
    ['an input manifest written before runs had ids', InputManifestShape, input],
    ['an input manifest with a run id', InputManifestShape, { ...input, run: 'r1' }],
    ['a pending-commit marker', PendingCommitShape, pending],
    ['a sketch file of no months', SketchFileShape, sketchFile({})],
    ['a sketch with exact quantiles', SketchFileShape, sketchFile({ '2024-01': { heart_rate: sketchOf([60, 72, 72.5]) } })],
    ['a sketch with a t-digest', SketchFileShape, sketchFile({ '2024-01': { heart_rate: sketchOf(Array.from({ length: 5000 }, (_, i) => 40 + i / 50)) } })],
    ['an empty measure (min and max null)', SketchFileShape, sketchFile({ '2024-02': { weight: sketchOf([]) } })],
    ['what stats merged', StatsSourcesShape, { version: 1, datasets: { vitals: ['["H001","all","r1",null,null]'] } }],
    ['what stats merged, no dataset', StatsSourcesShape, { version: 1, datasets: {} }],
  ])('%s', (_name, shape, value) => {
    const v = json(value);
    expect(checkShape(shape, v, 'f.json')).toBe(v); // the file's own value, not a stripped copy
  });
});

describe('what the engine does not write is damaged, naming the file and the field', () => {
  it.each<[string, Parameters<typeof checkShape>[0], unknown, RegExp]>([
    ['null', HospitalManifestShape, null, /expected object/],
    ['a list', PendingCommitShape, [], /expected object/],
    ['{}', HospitalManifestShape, {}, /at version/],
    ['an unknown dataset', HospitalManifestShape, { ...manifest(), dataset: 'imaging' }, /at dataset/],
    ['a scope without rows', HospitalManifestShape, { ...manifest(), scopes: { all: { ...scope, rows: undefined } } }, /at scopes\.all\.rows/],
    ['a count that is text', InputManifestShape, { ...input, blank_lines: '0' }, /at blank_lines/],
    ['moments that are a number', SketchFileShape, sketchFile({ '2024-01': { heart_rate: { ...sketchOf([1]), moments: 5 as never } } }), /at months\.2024-01\.heart_rate\.moments/],
    ['quantiles of an unknown kind', SketchFileShape, sketchFile({ '2024-01': { heart_rate: { ...sketchOf([1]), quantiles: { kind: 'hll' } as never } } }), /at months\.2024-01\.heart_rate\.quantiles/],
    ['exact values that are not a list', SketchFileShape, sketchFile({ '2024-01': { heart_rate: { ...sketchOf([1]), quantiles: { kind: 'exact', values: {} as never, counts: [] } } } }), /expected array/],
    ['datasets that are a list', StatsSourcesShape, { version: 1, datasets: [] }, /at datasets/],
  ])('%s', (_name, shape, value, detail) => {
    const e = expectErrorCodeSync(() => checkShape(shape, json(value), '/o/f.json'), 'HCP_ERR_INTERNAL');
    expect(e.message).toMatch(/^\/o\/f\.json is not a file this engine wrote \(.*\): the output directory is damaged$/);
    expect(e.message).toMatch(detail);
  });
});
