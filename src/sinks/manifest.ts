/**
 * The root `_manifest.json` and `_SUCCESS`, written by `run` and `report`
 * after everything else: what was committed for each dataset and hospital,
 * the per-file ledger, the statistics files and the gate results.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DATASETS } from '../registry.js';
import { readManifests, sourceOf } from './commit.js';
import { writeFileAtomic, writeJsonAtomic } from './fsutil.js';
import type { QualityReport } from './report.js';

export interface FileLedger {
  dataset: string;
  input: string;
  read: number;
  accepted: number;
  rejected: number;
  holds: boolean;
}

export function writeRootManifest(out: string, report: QualityReport, extra: Record<string, unknown>): { ledger: FileLedger[] } {
  const datasets: Record<string, unknown> = {};
  const ledger = new Map<string, FileLedger>();
  let demoKey = false;
  for (const d of DATASETS) {
    const manifests = readManifests(out, d);
    if (manifests.length === 0) continue;
    const hospitals: Record<string, unknown> = {};
    for (const m of manifests) {
      hospitals[m.hospital_id] = m.scopes;
      for (const [scope, e] of Object.entries(m.scopes)) {
        demoKey ||= e.demo_key;
        const k = `${d}\u0000${sourceOf(e)}\u0000${scope}`;
        const l = ledger.get(k) ?? { dataset: d, input: e.input, read: 0, accepted: 0, rejected: 0, holds: true };
        l.read += e.rows.read;
        l.accepted += e.rows.accepted;
        l.rejected += e.rows.rejected;
        l.holds = l.read === l.accepted + l.rejected;
        ledger.set(k, l);
      }
    }
    datasets[d] = { hospitals };
  }
  // Per input file, from its own manifest (files with zero rows included);
  // the per-hospital sums above must agree with it. A file some of whose
  // partitions later runs replaced is checked on the hospitals it still
  // speaks for (the sums above).
  for (const i of report.inputs) {
    if (i.superseded_hospitals.length > 0) continue;
    const k = `${i.dataset}\u0000${sourceOf(i)}\u0000${i.scope}`;
    const fromHospitals = ledger.get(k) ?? { read: 0, accepted: 0, rejected: 0 };
    const agree = fromHospitals.read === i.rows.read && fromHospitals.accepted === i.rows.accepted && fromHospitals.rejected === i.rows.rejected;
    ledger.set(k, { dataset: i.dataset, input: i.input, ...i.rows, holds: agree && i.rows.read === i.rows.accepted + i.rows.rejected });
  }
  const files = [...ledger.values()];
  writeJsonAtomic(join(out, '_manifest.json'), {
    version: 1,
    written_at: new Date().toISOString(),
    pseudonym_key: demoKey ? 'demo (HCP_PSEUDONYM_KEY was not set)' : 'HCP_PSEUDONYM_KEY',
    ledger: files,
    quality: { passed: report.passed, report: 'quality/report.json' },
    ...extra,
    datasets,
  });
  return { ledger: files };
}

/** `_SUCCESS` marks a complete output whose gates passed; it is written last. */
export function markSuccess(out: string, passed: boolean): void {
  const path = join(out, '_SUCCESS');
  if (passed) writeFileAtomic(path, '');
  else rmSync(path, { force: true });
}
