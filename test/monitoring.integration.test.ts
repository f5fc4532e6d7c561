/**
 * End to end: a real Pushgateway + Prometheus (scripts/monitoring-services.sh),
 * the real engine on the bundled sample data, then the numbers Prometheus holds
 * against the run's ledger, promtool on every config, every PromQL expression
 * of the dashboard and the alerts, and no patient ID in any label.
 *
 * Skipped (with the reason) only where the Prometheus binaries cannot be
 * installed; the script installs them on Debian (CI).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, pushMetrics, STAGES } from '../src/metrics/index.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = join(REPO, 'scripts/monitoring-services.sh');
const CLI = join(REPO, 'dist/src/cli.js');
const DASHBOARD = join(REPO, 'monitoring/grafana/dashboards/healthcare-pipeline.json');
const ALERTS = join(REPO, 'monitoring/alerts.yml');
const INPUTS = { vitals: join(REPO, 'data/vitals_2024.csv'), labs: join(REPO, 'data/lab_results_2024.csv') } as const;
const EXIT_UNAVAILABLE = 4; // monitoring-services.sh: binaries cannot be installed
const JOB = 'healthcare_pipeline';

interface Rows {
  read: number;
  accepted: number;
  rejected: number;
}
/** Rows of the run by dataset, and by `dataset hospital_id`. */
interface Ledger {
  datasets: Record<string, Rows>;
  hospitals: Record<string, Rows>;
  /** `dataset hospital_id` pairs with a failed quality gate. */
  failedGates: string[];
}

interface Services {
  PUSHGATEWAY_URL: string;
  PROMETHEUS_URL: string;
  PROMETHEUS_CONFIG: string;
  PROMTOOL: string;
}

let work = '';
let servicesDir = '';
let skipReason: string | undefined;
let services: Services;
let metricsFile = '';
let ledger: Ledger = { datasets: {}, hospitals: {}, failedGates: [] };

// --- helpers ------------------------------------------------------------------

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

function parseEnvFile(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
}

interface PromVector {
  metric: Record<string, string>;
  value: [number, string];
}

async function promQuery(expr: string): Promise<{ status: string; error?: string; data?: { resultType: string; result: unknown } }> {
  const url = `${services.PROMETHEUS_URL}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const res = await fetch(url);
  return (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
}

function resultSize(r: { data?: { resultType: string; result: unknown } }): number {
  const result = r.data?.result;
  if (Array.isArray(result)) return result.length;
  return result === undefined ? 0 : 1; // scalar or string
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Tolerant RFC 4180 reader: records as arrays of fields (quotes, embedded newlines). */
function csvRecords(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let inQuotes = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inQuotes) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') inQuotes = false;
      else field += c;
    } else if (c === '"') inQuotes = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      record.push(field);
      records.push(record);
      record = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || record.length > 0) records.push([...record, field]);
  return records;
}

async function patientIds(): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const path of Object.values(INPUTS)) {
    const [header, ...rows] = csvRecords((await readFile(path, 'utf8')).replace(/^\uFEFF/, ''));
    const col = (header ?? []).findIndex((h) => h.trim().toLowerCase() === 'patient_id');
    expect(col, `${path} has a patient_id column`).toBeGreaterThanOrEqual(0);
    for (const r of rows) {
      const v = r[col]?.trim();
      if (v) ids.add(v);
    }
  }
  return ids;
}

function labelValues(exposition: string): Set<string> {
  const values = new Set<string>();
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#')) continue;
    for (const m of line.matchAll(/[a-zA-Z_][a-zA-Z0-9_]*="((?:[^"\\]|\\.)*)"/g)) values.add(m[1]!);
  }
  return values;
}

const addRows = (a: Rows | undefined, b: Rows): Rows => ({
  read: (a?.read ?? 0) + b.read,
  accepted: (a?.accepted ?? 0) + b.accepted,
  rejected: (a?.rejected ?? 0) + b.rejected,
});

/**
 * The run's ledger from the last stdout line (the JSON summary):
 * `datasets.<d>.rows`, `datasets.<d>.hospital_rows[]`, `gates.failed[]`.
 */
function ledgerFromSummary(summary: Record<string, any>): Ledger {
  const out: Ledger = { datasets: {}, hospitals: {}, failedGates: [] };
  for (const [d, s] of Object.entries<Record<string, any>>(summary.datasets ?? {})) {
    out.datasets[d] = { read: s.rows.read, accepted: s.rows.accepted, rejected: s.rows.rejected };
    for (const h of s.hospital_rows ?? []) out.hospitals[`${d} ${h.hospital_id}`] = addRows(undefined, h.rows);
  }
  out.failedGates = [...new Set<string>((summary.gates?.failed ?? []).map((g: any) => `${g.dataset} ${g.hospital_id}`))].sort();
  return out;
}

/** The same from `_manifest.json`: `ledger[]` per file, `datasets.<d>.hospitals.<h>.<scope>.rows`. */
function ledgerFromManifest(manifest: Record<string, any>): Omit<Ledger, 'failedGates'> {
  const out: Omit<Ledger, 'failedGates'> = { datasets: {}, hospitals: {} };
  for (const f of manifest.ledger ?? []) out.datasets[f.dataset] = addRows(out.datasets[f.dataset], f);
  for (const [d, ds] of Object.entries<Record<string, any>>(manifest.datasets ?? {})) {
    for (const [h, scopes] of Object.entries<Record<string, any>>(ds.hospitals ?? {})) {
      for (const e of Object.values<Record<string, any>>(scopes)) {
        out.hospitals[`${d} ${h}`] = addRows(out.hospitals[`${d} ${h}`], e.rows);
      }
    }
  }
  return out;
}

/** Instant vector → `label1 label2 …` → value. */
function vectorMap(result: unknown, labels: string[]): Record<string, number> {
  return Object.fromEntries(
    (result as PromVector[]).map((v) => [labels.map((l) => v.metric[l]).join(' '), Number(v.value[1])]),
  );
}

// --- setup --------------------------------------------------------------------

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'hcp-monitoring-'));
  servicesDir = join(work, 'services');
  const started = await run('bash', [SCRIPT, 'start', servicesDir], { timeoutMs: 600_000 });
  if (started.code === EXIT_UNAVAILABLE) {
    skipReason = `Prometheus/Pushgateway not installable here: ${started.stderr.trim()}`;
    return;
  }
  if (started.code !== 0) throw new Error(`monitoring-services.sh start failed (${started.code}):\n${started.stderr}`);
  services = parseEnvFile(await readFile(join(servicesDir, 'services.env'), 'utf8')) as unknown as Services;

  for (const f of [CLI, ...Object.values(INPUTS)]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: build the engine (npm run build) and bundle the sample data`);
  }
  const out = join(work, 'out');
  await mkdir(out);
  metricsFile = join(work, 'textfile', 'healthcare_pipeline.prom');
  await mkdir(join(work, 'textfile'));
  const engine = await run(
    process.execPath,
    [CLI, 'run', '--out', out, '--pushgateway', services.PUSHGATEWAY_URL, '--metrics-file', metricsFile, '--no-progress'],
    { env: { ...process.env, HCP_PSEUDONYM_KEY: 'monitoring-integration-test-key' }, timeoutMs: 120_000 },
  );
  // 3 = a quality gate failed: still a complete run with metrics.
  if (engine.code !== 0 && engine.code !== 3) {
    throw new Error(`engine exited ${engine.code}:\n${engine.stderr.slice(-3000)}`);
  }
  const lastLine = engine.stdout.trim().split('\n').at(-1) ?? '';
  ledger = ledgerFromSummary(JSON.parse(lastLine) as Record<string, any>);
  const fromManifest = ledgerFromManifest(JSON.parse(await readFile(join(out, '_manifest.json'), 'utf8')) as Record<string, any>);
  expect(Object.keys(ledger.datasets).sort(), 'datasets in the summary').toEqual(['labs', 'vitals']);
  expect(fromManifest.datasets, '_manifest.json ledger vs stdout summary').toEqual(ledger.datasets);
  expect(fromManifest.hospitals, '_manifest.json hospitals vs stdout summary').toEqual(ledger.hospitals);
}, 600_000);

afterAll(async () => {
  if (servicesDir) await run('bash', [SCRIPT, 'stop', servicesDir], { timeoutMs: 60_000 });
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);

// --- tests --------------------------------------------------------------------

describe('monitoring against a real Pushgateway and Prometheus', () => {
  it('Prometheus holds the run ledger: sum by (dataset, outcome) (hcp_rows_total)', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const expected: Record<string, number> = {};
    for (const [d, l] of Object.entries(ledger.datasets)) {
      expect(l.read, d).toBe(l.accepted + l.rejected);
      expected[`${d} accepted`] = l.accepted;
      expected[`${d} rejected`] = l.rejected;
    }
    const expr = `sum by (dataset, outcome) (hcp_rows_total{job="${JOB}"})`;
    let got: Record<string, number> = {};
    await poll('Prometheus to scrape the pushed run', async () => {
      got = vectorMap((await promQuery(expr)).data?.result ?? [], ['dataset', 'outcome']);
      return JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(expected).sort()) ? true : undefined;
    }).catch(() => undefined);
    expect(got).toEqual(expected);
  });

  it('and per hospital: sum by (dataset, hospital_id, outcome) (hcp_rows_total)', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const expected: Record<string, number> = {};
    for (const [dh, l] of Object.entries(ledger.hospitals)) {
      if (l.accepted > 0) expected[`${dh} accepted`] = l.accepted;
      if (l.rejected > 0) expected[`${dh} rejected`] = l.rejected;
    }
    const r = await promQuery(`sum by (dataset, hospital_id, outcome) (hcp_rows_total{job="${JOB}"}) > 0`);
    expect(vectorMap(r.data?.result ?? [], ['dataset', 'hospital_id', 'outcome'])).toEqual(expected);
  });

  it('the gate and reject-rate alerts fire for exactly the hospitals that earned them', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    // As the engine's reject_rate gate: per hospital but __invalid__, and per dataset as ALL.
    const high = (l: Rows): boolean => l.read > 0 && l.rejected / l.read > 0.05;
    const highReject = [
      ...Object.entries(ledger.hospitals).filter(([dh, l]) => !dh.endsWith(' __invalid__') && high(l)),
      ...Object.entries(ledger.datasets).filter(([, l]) => high(l)).map(([d, l]) => [`${d} ALL`, l] as const),
    ]
      .map(([dh]) => dh)
      .sort();
    const firing = async (alert: string): Promise<string[]> => {
      const r = await promQuery(`ALERTS{alertname="${alert}",alertstate="firing"}`);
      return Object.keys(vectorMap(r.data?.result ?? [], ['dataset', 'hospital_id'])).sort();
    };
    // Rules are evaluated every second; give them a few rounds.
    await poll('the alerts to settle', async () => {
      const [gate, reject] = await Promise.all([firing('HcpQualityGateFailed'), firing('HcpRejectRateHigh')]);
      return gate.join() === ledger.failedGates.join() && reject.join() === highReject.join() ? true : undefined;
    }, 10_000).catch(() => undefined);
    expect(await firing('HcpQualityGateFailed')).toEqual(ledger.failedGates);
    expect(await firing('HcpRejectRateHigh')).toEqual(highReject);
  });

  it('the Pushgateway holds one group per (dataset, hospital), each with its own rows only', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const res = await fetch(`${services.PUSHGATEWAY_URL}/api/v1/metrics`);
    const groups = ((await res.json()) as { data: Array<Record<string, unknown>> }).data;
    const ours = groups.filter((g) => (g.labels as Record<string, string>).job === JOB);
    expect(ours.length).toBeGreaterThan(0);
    for (const g of ours) {
      const labels = g.labels as Record<string, string>;
      expect(Object.keys(labels).sort()).toEqual(['dataset', 'hospital_id', 'job']);
      expect(labels.hospital_id).toMatch(/^([A-Za-z0-9_-]{1,32})$/);
      const rows = g.hcp_rows_total as { metrics: Array<{ labels: Record<string, string> }> } | undefined;
      for (const s of rows?.metrics ?? []) {
        expect(s.labels.hospital_id).toBe(labels.hospital_id);
        expect(s.labels.dataset).toBe(labels.dataset);
      }
    }
    const pushed = ours.map((g) => `${(g.labels as Record<string, string>).dataset} ${(g.labels as Record<string, string>).hospital_id}`);
    expect(pushed).toEqual(expect.arrayContaining(Object.keys(ledger.hospitals)));
    // Run-level series (stage durations) sit in exactly one group, one per stage.
    const withStages = ours.filter((g) => g.hcp_stage_duration_seconds !== undefined);
    expect(withStages).toHaveLength(1);
    const stages = (withStages[0]!.hcp_stage_duration_seconds as { metrics: Array<{ labels: Record<string, string> }> }).metrics;
    expect(stages.map((s) => s.labels.stage).sort()).toEqual([...STAGES].sort());
  });

  it('promtool accepts the generated and the committed configs, the rules and the textfile', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const promtool = services.PROMTOOL;
    const checks: Array<[string, string[], string?]> = [
      ['generated config', ['check', 'config', services.PROMETHEUS_CONFIG]],
      ['committed config', ['check', 'config', join(REPO, 'monitoring/prometheus.yml')]],
      ['alert rules', ['check', 'rules', ALERTS]],
      ['metrics textfile', ['check', 'metrics'], await readFile(metricsFile, 'utf8')],
    ];
    for (const [what, args, input] of checks) {
      const r = await run(promtool, args, { input });
      expect(r.code, `promtool ${args.join(' ')} (${what}):\n${r.stdout}${r.stderr}`).toBe(0);
    }
    const text = await readFile(metricsFile, 'utf8');
    expect(text).toMatch(/^hcp_rows_total\{/m);
  });

  it('every PromQL expression of the dashboard and the alerts evaluates; row panels have data', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    // Grafana variables → values Prometheus understands.
    const vars: Record<string, string> = {
      job: JOB,
      dataset: '.*',
      hospital: '.*',
      __rate_interval: '1m',
      __interval: '15s',
      __range: '1h',
      datasource: 'prometheus',
    };
    const substitute = (expr: string): string =>
      expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, a?: string, b?: string) => {
        const v = vars[(a ?? b)!];
        if (v === undefined) throw new Error(`unknown dashboard variable ${whole} in ${expr}`);
        return v;
      });

    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Record<string, unknown>;
    const exprs: string[] = [];
    const walk = (n: unknown): void => {
      if (Array.isArray(n)) return n.forEach(walk);
      if (n && typeof n === 'object') {
        for (const [k, v] of Object.entries(n)) {
          if (k === 'expr' && typeof v === 'string') exprs.push(v);
          else walk(v);
        }
      }
    };
    walk(dashboard.panels);
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    // Template variables: label_values(selector, label) → count by (label) (selector).
    const templating = (dashboard.templating as { list: Array<{ type: string; definition?: string }> }).list;
    const varExprs = templating
      .filter((t) => t.type === 'query')
      .map((t) => {
        const m = /^label_values\((.*),\s*(\w+)\)$/.exec(t.definition ?? '');
        expect(m, `variable query ${t.definition}`).not.toBeNull();
        return `count by (${m![2]}) (${m![1]})`;
      });

    for (const raw of [...exprs, ...varExprs]) {
      const expr = substitute(raw);
      const mustHaveData = /hcp_rows_total/.test(expr);
      // Rates need two scrapes; give them a few seconds.
      await poll(
        `${expr} to ${mustHaveData ? 'return data' : 'evaluate'}`,
        async () => {
          const r = await promQuery(expr);
          if (r.status !== 'success') throw new Error(`${r.error}`);
          return !mustHaveData || resultSize(r) > 0 ? true : undefined;
        },
        10_000,
      );
    }

    // Alert rules: as Prometheus loaded them from monitoring/alerts.yml.
    const alertsText = await readFile(ALERTS, 'utf8');
    const declared = [...alertsText.matchAll(/^\s*- alert:\s*(\S+)/gm)].map((m) => m[1]!);
    const rules = await poll('the alert rules to be evaluated', async () => {
      const res = await fetch(`${services.PROMETHEUS_URL}/api/v1/rules`);
      const body = (await res.json()) as {
        data: { groups: Array<{ rules: Array<{ name: string; query: string; health: string; lastError?: string }> }> };
      };
      const all = body.data.groups.flatMap((g) => g.rules);
      return all.length === declared.length && all.every((r) => r.health !== 'unknown') ? all : undefined;
    });
    expect(rules.map((r) => r.name).sort()).toEqual([...declared].sort());
    for (const r of rules) {
      expect(r.health, `${r.name}: ${r.lastError ?? ''}`).toBe('ok');
      const q = await promQuery(r.query);
      expect(q.status, `${r.name}: ${q.error ?? ''}`).toBe('success');
    }
  });

  it('no label value in the Pushgateway or the textfile is a patient ID from the input', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const ids = await patientIds();
    expect(ids.size).toBeGreaterThan(0);
    const gateway = await (await fetch(`${services.PUSHGATEWAY_URL}/metrics`)).text();
    expect(gateway).toMatch(/^hcp_rows_total\{/m);
    for (const [where, text] of [
      ['pushgateway', gateway],
      ['textfile', await readFile(metricsFile, 'utf8')],
    ] as const) {
      const leaked = [...labelValues(text)].filter(
        (v) => ids.has(v) || [...ids].some((id) => id.length >= 6 && v.includes(id)),
      );
      expect(leaked, `patient IDs in ${where} labels`).toEqual([]);
    }
  });
  // After the checks of `run`'s groups: it adds the command groups of the DAG's other commands.
  it('partition, stats and report as the DAG runs them: the gateway takes their command groups, and Prometheus sees every stage time once', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const out = join(work, 'out');
    const push = ['--pushgateway', services.PUSHGATEWAY_URL, '--no-progress'];
    const env = { ...process.env, HCP_PSEUDONYM_KEY: 'monitoring-integration-test-key' };
    for (const args of [
      ['partition', '--dataset', 'vitals', '--input', INPUTS.vitals, '--landing', join(work, 'landing')],
      ['stats', '--out', out],
      ['report', '--out', out, '--max-reject-rate', '1'],
    ]) {
      const r = await run(process.execPath, [CLI, ...args, ...push], { env, timeoutMs: 120_000 });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
      expect(r.stderr, `${args[0]} pushed without a warning`).not.toMatch(/metrics push/);
    }
    const expr = `hcp_stage_duration_seconds{job="${JOB}",command!=""}`;
    const got = await poll('Prometheus to scrape the command groups', async () => {
      const r = vectorMap((await promQuery(expr)).data?.result ?? [], ['command', 'dataset', 'hospital_id', 'stage']);
      return Object.keys(r).length === 3 ? r : undefined;
    });
    expect(Object.keys(got).sort()).toEqual(['partition vitals ALL partition', 'report vitals ALL report', 'stats vitals ALL stats']);
    // `run`'s own stage times are still there, once each (its stats and report stages included: another run).
    const r = await promQuery(`count by (stage) (hcp_stage_duration_seconds{job="${JOB}",command=""})`);
    const stages = vectorMap(r.data?.result ?? [], ['stage']);
    expect(Object.keys(stages).sort()).toEqual([...STAGES].sort());
    expect(Object.values(stages).every((n) => n === 1)).toBe(true);
  });

  // Last: it adds a dataset of its own to the gateway.
  it('the alerts fire on a probe run with known failures', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const d = 'alert_probe';
    const m = createMetrics({ collectDefault: false });
    m.addRows(d, 'HOK', 'accepted', 99);
    m.addRows(d, 'HOK', 'rejected', 1);
    m.setQualityGate(d, 'HOK', true);
    m.setLastSuccess(d, 'HOK', Date.now() / 1000);
    m.addRows(d, 'HBAD', 'accepted', 50);
    m.addRows(d, 'HBAD', 'rejected', 50);
    m.setQualityGate(d, 'HBAD', false);
    m.setLastSuccess(d, 'HBAD', Date.now() / 1000 - 40 * 86400);
    m.setQualityGate(d, 'ALL', false);
    expect(await pushMetrics(m, services.PUSHGATEWAY_URL, { dataset: d, hospitalIds: ['HOK', 'HBAD'] })).toEqual({ ok: true });

    const expected: Record<string, string[]> = {
      HcpQualityGateFailed: ['ALL', 'HBAD'],
      HcpRejectRateHigh: ['ALL', 'HBAD'], // ALL: 51 of 200 rows
      HcpNoSuccessfulRun35d: ['HBAD'],
    };
    const firing = async (): Promise<Record<string, string[]>> => {
      const r = await promQuery(`ALERTS{alertstate="firing",dataset="${d}"}`);
      const out: Record<string, string[]> = {};
      for (const v of (r.data?.result ?? []) as PromVector[]) {
        (out[v.metric.alertname!] ??= []).push(v.metric.hospital_id!);
      }
      for (const list of Object.values(out)) list.sort();
      return out;
    };
    let got: Record<string, string[]> = {};
    await poll('the probe alerts to fire', async () => {
      got = await firing();
      return JSON.stringify(got, Object.keys(got).sort()) === JSON.stringify(expected, Object.keys(expected).sort()) ? true : undefined;
    }).catch(() => undefined);
    expect(got).toEqual(expected);
  });
});
