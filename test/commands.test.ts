/**
 * The commands' promises around their outputs (src/commands/pipeline.ts,
 * src/cli.ts): `run` checks every input before it touches the output,
 * metrics call a run successful only when it was, `report` declares success
 * only over current statistics, and a stdout or stderr that cannot be
 * written (closed, full) does not fail a run or change its exit code.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakePushgateway } from './fake-pushgateway.js';
import { CLI, type CliResult, DATA, describeRun, listFiles, removeTempDirs, runCli, snapshot, tempDir, TEST_KEY } from './helpers.js';

afterAll(removeTempDirs);

const VITALS = join(DATA, 'vitals_2024.csv');
const LABS = join(DATA, 'lab_results_2024.csv');
const OPTS = ['--workers', '2', '--no-progress', '--as-of', '2025-01-01'];

/** `text` with the header's column `name` and that field of every row removed (no quoted commas in these files). */
function withoutColumn(text: string, name: string): string {
  const lines = text.split('\n');
  const i = lines[0].split(',').indexOf(name);
  expect(i).toBeGreaterThanOrEqual(0);
  return lines.map((l) => (l === '' ? l : l.split(',').filter((_, k) => k !== i).join(','))).join('\n');
}

describe('run: every input is checked before the output is touched (SPEC §1, §5)', () => {
  const dir = tempDir();
  const noRange = join(dir, 'labs_no_reference_range.csv');
  writeFileSync(noRange, withoutColumn(readFileSync(LABS, 'utf8'), 'reference_range'));
  const noPatient = join(dir, 'vitals_no_patient_id.csv');
  writeFileSync(noPatient, withoutColumn(readFileSync(VITALS, 'utf8'), 'patient_id'));
  const missing = join(dir, 'no_such_file.csv');

  it.each([
    ['labs without a required column', VITALS, noRange, 'HCP_ERR_BAD_HEADER'],
    ['a missing labs file', VITALS, missing, 'HCP_ERR_INPUT_MISSING'],
    ['vitals without a required column', noPatient, LABS, 'HCP_ERR_BAD_HEADER'],
    ['a missing vitals file', missing, LABS, 'HCP_ERR_INPUT_MISSING'],
  ])('%s: exit 2, nothing written into a new output, an existing good output (and its _SUCCESS) kept as it was', async (_, vitals, labs, code) => {
    const fresh = join(tempDir(), 'out');
    const r = await runCli(['run', '--vitals', vitals, '--labs', labs, '--out', fresh, ...OPTS]);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.json).toMatchObject({ status: 'error', error: { code } });
    expect(listFiles(fresh)).toEqual([]);

    const good = join(tempDir(), 'out');
    const ok = await runCli(['run', '--vitals', VITALS, '--labs', LABS, '--out', good, ...OPTS]);
    expect(ok.code, describeRun(ok)).toBe(0);
    expect(existsSync(join(good, '_SUCCESS'))).toBe(true);
    const before = snapshot(good);
    const bad = await runCli(['run', '--vitals', vitals, '--labs', labs, '--out', good, ...OPTS]);
    expect(bad.code, describeRun(bad)).toBe(2);
    expect(snapshot(good)).toEqual(before);
  });
});

/** Sample lines of `name` in a Prometheus text file. */
const samples = (prom: string, name: string) => prom.split('\n').filter((l) => l.startsWith(`${name}{`));

describe('metrics: a run that fails is not a success', () => {
  it('report exits 1 when the ledger does not hold, and the metrics file has no last-success time', async () => {
    const out = join(tempDir(), 'out');
    const p = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS]);
    expect(p.code, describeRun(p)).toBe(0);
    const s = await runCli(['stats', '--out', out]);
    expect(s.code, describeRun(s)).toBe(0);
    // The control: the same report with the ledger holding records a last success for each hospital.
    const goodProm = join(out, '..', 'good.prom');
    const good = await runCli(['report', '--out', out, '--metrics-file', goodProm, '--no-progress']);
    expect(good.code, describeRun(good)).toBe(0);
    expect(samples(readFileSync(goodProm, 'utf8'), 'hcp_last_success_timestamp_seconds').length).toBeGreaterThan(0);

    // One hospital's manifest now claims a row more than it curated and quarantined.
    const manifest = join(out, '_manifests', 'vitals', 'hospital_id=H001.json');
    const m = JSON.parse(readFileSync(manifest, 'utf8'));
    m.scopes.all.rows.read += 1;
    writeFileSync(manifest, JSON.stringify(m));
    const s2 = await runCli(['stats', '--out', out]);
    expect(s2.code, describeRun(s2)).toBe(0);
    const badProm = join(out, '..', 'bad.prom');
    const bad = await runCli(['report', '--out', out, '--metrics-file', badProm, '--no-progress']);
    expect(bad.code, describeRun(bad)).toBe(1);
    expect(bad.json).toMatchObject({ status: 'error', error: { code: 'HCP_ERR_LEDGER' } });
    const prom = readFileSync(badProm, 'utf8');
    expect(samples(prom, 'hcp_last_success_timestamp_seconds')).toEqual([]);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(false);
  });
});

/** `report` over missing or stale statistics: exit 2 (HCP_ERR_NO_STATS), and no _SUCCESS left behind. */
async function reportRefuses(out: string): Promise<CliResult> {
  const r = await runCli(['report', '--out', out]);
  expect(r.code, describeRun(r)).toBe(2);
  expect(r.json).toMatchObject({ status: 'error', error: { code: 'HCP_ERR_NO_STATS' } });
  expect(existsSync(join(out, '_SUCCESS'))).toBe(false);
  return r;
}

describe('report: success only over current statistics', () => {
  it('refuses (exit 2, no _SUCCESS) without statistics and over statistics older than the last process', async () => {
    const out = join(tempDir(), 'out');
    const process1 = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS]);
    expect(process1.code, describeRun(process1)).toBe(0);
    const none = await reportRefuses(out);
    expect(none.json!.error.message).toMatch(/run stats first/);
    expect(existsSync(join(out, 'quality'))).toBe(false);

    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    const fresh = await runCli(['report', '--out', out]);
    expect(fresh.code, describeRun(fresh)).toBe(0);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(true);

    // process again: the statistics no longer describe what is committed.
    const process2 = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS]);
    expect(process2.code, describeRun(process2)).toBe(0);
    // (process leaves the root _manifest.json and _SUCCESS to run and report, SPEC §5.)
    const before = snapshot(out);
    expect(before['_SUCCESS']).toBeDefined();
    await reportRefuses(out);
    // The earlier report's _SUCCESS no longer vouches for this output: it goes, and nothing else changes.
    const { _SUCCESS: _, ...rest } = before;
    expect(snapshot(out)).toEqual(rest);

    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    const again = await runCli(['report', '--out', out]);
    expect(again.code, describeRun(again)).toBe(0);
    expect(snapshot(out)['_SUCCESS']).toBeDefined();
  });
});

/** Sets the modification time of every file under `dir` to `seconds`. */
function touchAll(dir: string, seconds: number): void {
  for (const f of listFiles(dir)) utimesSync(join(dir, f), seconds, seconds);
}

describe('report: statistics are current by what they merged, not by file times', () => {
  it('a process since stats is seen even when its manifests have the same modification time as the statistics', async () => {
    const out = join(tempDir(), 'out');
    expect((await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS])).code).toBe(0);
    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    expect((await runCli(['report', '--out', out])).code).toBe(0);
    expect((await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS])).code).toBe(0);
    // The same clock tick (a filesystem with 1-2 s timestamps): every file has one time.
    touchAll(out, 1_700_000_000);
    await reportRefuses(out);
  });

  it('a copy without preserved times (statistics older than the manifests) is current', async () => {
    const out = join(tempDir(), 'out');
    expect((await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS])).code).toBe(0);
    expect((await runCli(['process', '--dataset', 'labs', '--input', LABS, '--out', out, ...OPTS])).code).toBe(0);
    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    const copy = join(tempDir(), 'copy');
    cpSync(out, copy, { recursive: true });
    touchAll(join(copy, 'stats'), 1_600_000_000);
    const r = await runCli(['report', '--out', copy]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(existsSync(join(copy, '_SUCCESS'))).toBe(true);
  });

  it('manifests written before run ids: matched by input path and commit time', async () => {
    const out = join(tempDir(), 'out');
    expect((await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS])).code).toBe(0);
    const dir = join(out, '_manifests', 'vitals');
    const hospitals = readdirSync(dir).filter((f) => /^hospital_id=.+\.json$/.test(f));
    expect(hospitals.length).toBeGreaterThan(1);
    const edit = (f: string, change: (m: any) => void) => {
      const m = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      change(m);
      writeFileSync(join(dir, f), JSON.stringify(m));
    };
    for (const f of hospitals) edit(f, (m) => delete m.scopes.all.run);
    for (const f of readdirSync(join(dir, 'inputs'))) edit(join('inputs', f), (m) => delete m.run);
    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    touchAll(out, 1_700_000_000);
    const ok = await runCli(['report', '--out', out]);
    expect(ok.code, describeRun(ok)).toBe(0);
    // An older version's process commits one hospital again: a later commit time, still no run id.
    for (const f of [hospitals[0], ...readdirSync(join(dir, 'inputs')).map((x) => join('inputs', x))]) edit(f, (m) => ((m.scopes?.all ?? m).committed_at = '2099-01-01T00:00:00.000Z'));
    touchAll(out, 1_700_000_000);
    await reportRefuses(out);
  });

  it('a dataset processed without accepted rows needs its (header-only) statistics too, as stats writes them', async () => {
    const dir = tempDir();
    const headerOnly = join(dir, 'vitals.csv');
    writeFileSync(headerOnly, readFileSync(VITALS, 'utf8').split('\n')[0] + '\n');
    const out = join(dir, 'out');
    expect((await runCli(['process', '--dataset', 'vitals', '--input', headerOnly, '--out', out, ...OPTS])).code).toBe(0);
    expect(existsSync(join(out, 'sketches')) ? listFiles(join(out, 'sketches')) : []).toEqual([]);
    await reportRefuses(out);
    const st = await runCli(['stats', '--out', out]);
    expect(st.code, describeRun(st)).toBe(0);
    expect(st.json!.datasets.map((d: { dataset: string }) => d.dataset)).toEqual(['vitals']);
    const ok = await runCli(['report', '--out', out]);
    expect(ok.code, describeRun(ok)).toBe(0);
  });
});

describe('run: a partition lock held by another run', () => {
  // A live run's lock ends with that run (a scheduler retries); a lock holding no pid needs a person: the summary
  // says `permanent`, so the DAG fails the task at once (dags/hcp_airflow/cli.py).
  it.each<[string, () => string, boolean]>([
    ['held by a live process', () => String(process.pid), false],
    ['holding no pid', () => 'not a pid', true],
  ])('%s: exit 2 HCP_ERR_LOCKED before anything changes, even when it is the second dataset\'s', async (_name, text, permanent) => {
    const out = join(tempDir(), 'out');
    const ok = await runCli(['run', '--vitals', VITALS, '--labs', LABS, '--out', out, ...OPTS]);
    expect(ok.code, describeRun(ok)).toBe(0);
    const before = snapshot(out);
    // A live process (this test's) holds the labs partition of LABS (src/coordinator.ts partitionLock).
    const name = createHash('sha256').update(realpathSync(LABS)).digest('hex').slice(0, 16);
    const lock = join(out, '_locks', `labs.all.${name}.lock`);
    mkdirSync(join(out, '_locks'));
    writeFileSync(lock, text(), { flag: 'wx' });
    try {
      const r = await runCli(['run', '--vitals', VITALS, '--labs', LABS, '--out', out, ...OPTS]);
      expect(r.code, describeRun(r)).toBe(2);
      expect(r.json).toMatchObject({ status: 'error', error: { code: 'HCP_ERR_LOCKED' } });
      expect(r.json!.error.permanent, describeRun(r)).toBe(permanent ? true : undefined);
      expect(readdirSync(join(out, '_locks'))).toEqual([`labs.all.${name}.lock`]);
    } finally {
      rmSync(lock);
    }
    rmSync(join(out, '_locks'), { recursive: true });
    expect(snapshot(out)).toEqual(before);
  });
});

describe('metrics: last success only when the whole run succeeded', () => {
  it('a failed gate of another hospital (exit 3, no _SUCCESS): no last-success time for any hospital', async () => {
    const out = join(tempDir(), 'out');
    const ok = await runCli(['run', '--vitals', VITALS, '--labs', LABS, '--out', out, '--max-reject-rate', '1', ...OPTS]);
    expect(ok.code, describeRun(ok)).toBe(0);
    const rates = (JSON.parse(readFileSync(join(out, 'quality', 'report.json'), 'utf8')).hospitals as { hospital_id: string; reject_rate: number }[])
      .filter((h) => h.hospital_id !== '__invalid__')
      .map((h) => h.reject_rate)
      .sort((a, b) => a - b);
    // A threshold some hospitals meet and at least one does not.
    const lo = rates.findIndex((r) => r > rates[0]);
    expect(lo).toBeGreaterThan(0);
    const threshold = (rates[lo - 1] + rates[lo]) / 2;
    const prom = join(out, '..', 'gate.prom');
    const r = await runCli(['report', '--out', out, '--max-reject-rate', String(threshold), '--metrics-file', prom]);
    expect(r.code, describeRun(r)).toBe(3);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(false);
    const text = readFileSync(prom, 'utf8');
    expect(samples(text, 'hcp_quality_gate_passed').some((l) => l.endsWith(' 1'))).toBe(true);
    expect(samples(text, 'hcp_last_success_timestamp_seconds')).toEqual([]);
  });
  it('a hospital this run did not process keeps the time its data was last committed, not the report\'s', async () => {
    const out = join(tempDir(), 'out');
    const first = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS]);
    expect(first.code, describeRun(first)).toBe(0);
    const between = Date.now() / 1000;
    await new Promise((r) => setTimeout(r, 1100));
    // The next delivery holds one hospital only (another file, so the others' partitions stay as they were).
    const lines = readFileSync(VITALS, 'utf8').split('\n');
    const h001 = join(out, '..', 'vitals_h001.csv');
    writeFileSync(h001, [lines[0], ...lines.filter((l) => l.startsWith('H001,'))].join('\n') + '\n');
    const second = await runCli(['process', '--dataset', 'vitals', '--input', h001, '--out', out, ...OPTS]);
    expect(second.code, describeRun(second)).toBe(0);
    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    const prom = join(out, '..', 'last.prom');
    const r = await runCli(['report', '--out', out, '--max-reject-rate', '1', '--metrics-file', prom]);
    expect(r.code, describeRun(r)).toBe(0);
    const last = new Map(
      samples(readFileSync(prom, 'utf8'), 'hcp_last_success_timestamp_seconds').map((l) => [/hospital_id="([^"]+)"/.exec(l)![1], Number(l.split(' ').pop())]),
    );
    const others = first.json!.hospitals.filter((h: string) => h !== 'H001');
    expect(others.length).toBeGreaterThan(0);
    for (const h of others) expect(last.get(h), h).toBeLessThan(between);
    expect(last.get('H001')).toBeGreaterThan(between);
    // The dataset (ALL): its newest commit.
    expect(last.get('ALL')).toBe(last.get('H001'));
  });
});

describe('metrics: stats records its stage like the other commands (SPEC §6, §7)', () => {
  it('--metrics-file and --pushgateway get hcp_stage_duration_seconds{stage="stats"}, pushed to a group of its own', async () => {
    const out = join(tempDir(), 'out');
    for (const [dataset, input] of [['vitals', VITALS], ['labs', LABS]]) {
      const p = await runCli(['process', '--dataset', dataset, '--input', input, '--out', out, ...OPTS]);
      expect(p.code, describeRun(p)).toBe(0);
    }
    const gateway = await startFakePushgateway();
    const prom = join(out, '..', 'stats.prom');
    try {
      const s = await runCli(['stats', '--out', out, '--metrics-file', prom, '--pushgateway', gateway.url]);
      expect(s.code, describeRun(s)).toBe(0);
    } finally {
      await gateway.close();
    }
    const stage = (text: string) => samples(text, 'hcp_stage_duration_seconds').map((l) => [/stage="([^"]*)"/.exec(l)![1], Number(l.split(' ').pop())] as const);
    const written = stage(readFileSync(prom, 'utf8'));
    expect(written.map(([name]) => name)).toEqual(['stats']);
    expect(written[0][1]).toBeGreaterThan(0);
    // stats owns no hospital's rows: its series go to its own group (the first dataset's, hospital_id ALL,
    // command stats), which it replaces, leaving every process-owned group and the ALL gates alone.
    expect(gateway.requests.map((p) => `${p.method} ${p.path}`)).toEqual(['PUT /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/ALL/command/stats']);
    expect(stage(gateway.requests[0].body)).toEqual(written.map(([name]) => [name, expect.any(Number)]));
  });
});

describe('metrics: the DAG\'s commands pushing into one Pushgateway never clobber each other (SPEC §7)', () => {
  it('partition, process, stats then report: every stage time is there once, and report leaves stats\' metrics as they were', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const gateway = await startFakePushgateway();
    const push = ['--pushgateway', gateway.url];
    const rows: Record<string, number> = {};
    let statsGroups: string[] = [];
    let afterStats: unknown;
    try {
      for (const [dataset, input] of [['vitals', VITALS], ['labs', LABS]]) {
        const part = await runCli(['partition', '--dataset', dataset, '--input', input, '--landing', join(dir, 'landing'), ...push]);
        expect(part.code, describeRun(part)).toBe(0);
        const p = await runCli(['process', '--dataset', dataset, '--input', input, '--out', out, ...OPTS, ...push]);
        expect(p.code, describeRun(p)).toBe(0);
        rows[dataset] = p.json!.rows.read;
      }
      const before = gateway.requests.length;
      const s = await runCli(['stats', '--out', out, ...push]);
      expect(s.code, describeRun(s)).toBe(0);
      statsGroups = gateway.requests.slice(before).map((r) => r.path);
      const ofStats = () => gateway.samples().filter((x) => statsGroups.includes(x.group));
      afterStats = ofStats();
      const r = await runCli(['report', '--out', out, '--max-reject-rate', '1', ...push]);
      expect(r.code, describeRun(r)).toBe(0);
      expect(ofStats()).toEqual(afterStats);
    } finally {
      await gateway.close();
    }
    expect(statsGroups.length).toBeGreaterThan(0);
    const stages = gateway.samples('hcp_stage_duration_seconds');
    const count = (stage: string) => stages.filter((x) => x.labels.stage === stage).length;
    expect({ partition: count('partition'), parse: count('parse'), stats: count('stats'), report: count('report') }).toEqual({ partition: 2, parse: 2, stats: 1, report: 1 });
    for (const x of stages.filter((y) => ['partition', 'stats', 'report'].includes(y.labels.stage))) {
      expect(x.value, x.labels.stage).toBeGreaterThan(0);
      // Every stage series names its dataset and hospital (the alerts' summaries), and a command without rows says which.
      expect(x.labels).toMatchObject({ job: 'healthcare_pipeline', hospital_id: 'ALL', command: x.labels.stage });
    }
    expect(stages.filter((x) => x.labels.stage === 'partition').map((x) => x.labels.dataset).sort()).toEqual(['labs', 'vitals']);
    // The rows are process's alone, once each: partition's split records are a series of their own.
    const pushedRows: Record<string, number> = {};
    for (const x of gateway.samples('hcp_rows_total')) pushedRows[x.labels.dataset] = (pushedRows[x.labels.dataset] ?? 0) + x.value;
    expect(pushedRows).toEqual(rows);
    expect(gateway.samples('hcp_partition_rows_total').map((x) => [x.labels.dataset, x.value]).sort()).toEqual(Object.entries(rows).sort());
    // report's gates still annotate the hospitals' groups.
    expect(gateway.samples('hcp_quality_gate_passed').length).toBeGreaterThan(2);
  });
});

describe('a closed stdout', () => {
  it('does not fail a command that succeeded (run ... | true)', async () => {
    const out = join(tempDir(), 'out');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'run', '--vitals', VITALS, '--labs', LABS, '--out', out, ...OPTS], {
        env: { ...process.env, HCP_PSEUDONYM_KEY: TEST_KEY },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // The reader goes away before the summary is written.
      child.stdout.destroy();
      const err: Buffer[] = [];
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr: Buffer.concat(err).toString('utf8') }));
    });
    expect(r.stderr).not.toMatch(/EPIPE/);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(true);
  });
});

/**
 * How the CLI's stdout or stderr is broken: `closed`, a pipe whose reader is gone before the first write
 * (`| head -1`: EPIPE, reported asynchronously); `full`, /dev/full (ENOSPC, written synchronously).
 */
type Sink = 'pipe' | 'closed' | 'full';

/** Runs the CLI with stdout and stderr as `sinks` say; what a `pipe` received is returned. */
function runBroken(args: string[], sinks: { stdout: Sink; stderr: Sink }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const fds: number[] = [];
  const stdio = (s: Sink) => {
    if (s !== 'full') return 'pipe';
    fds.push(openSync('/dev/full', 'w'));
    return fds[fds.length - 1];
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, HCP_PSEUDONYM_KEY: TEST_KEY },
      stdio: ['ignore', stdio(sinks.stdout), stdio(sinks.stderr)],
    });
    for (const fd of fds) closeSync(fd);
    const text = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      if (!stream) continue;
      if (sinks[name] === 'closed') stream.destroy();
      else stream.on('data', (b: Buffer) => text[name].push(b));
    }
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(text.stdout).toString('utf8'), stderr: Buffer.concat(text.stderr).toString('utf8') }));
  });
}

describe.skipIf(!existsSync('/dev/full'))('a log or summary that cannot be written changes neither the outcome nor the exit code', () => {
  const run = (out: string) => ['run', '--vitals', VITALS, '--labs', LABS, '--out', out, ...OPTS];
  const lastLine = (text: string) => JSON.parse(text.trim().split('\n').pop() ?? '');
  /** A whole run: both datasets committed, _SUCCESS written, nothing of the run left behind. */
  const expectCompleteRun = (out: string, what: string) => {
    expect(existsSync(join(out, '_SUCCESS')), what).toBe(true);
    expect(readdirSync(join(out, 'curated')).sort(), what).toEqual(['labs', 'vitals']);
    expect(existsSync(join(out, '_locks')) ? readdirSync(join(out, '_locks')) : [], what).toEqual([]);
    expect(existsSync(join(out, '_staging')) ? readdirSync(join(out, '_staging')) : [], what).toEqual([]);
  };

  it.each<[string, Sink, Sink]>([
    ['stderr closed (its reader gone: EPIPE)', 'pipe', 'closed'],
    ['stderr full (2>/dev/full)', 'pipe', 'full'],
    ['both closed (2>&1 | head -1)', 'closed', 'closed'],
    ['stdout full, stderr closed', 'full', 'closed'],
  ])('run, %s: exit 0, the summary if stdout works, _SUCCESS, no lock or staging left', async (_, stdout, stderr) => {
    const out = join(tempDir(), 'out');
    const r = await runBroken([...run(out), '--progress'], { stdout, stderr });
    const what = `exit ${r.code}\n${r.stderr}\n${r.stdout.slice(-2000)}`;
    expect(r.code, what).toBe(0);
    if (stdout === 'pipe') expect(lastLine(r.stdout), what).toMatchObject({ command: 'run', status: 'ok', exit_code: 0 });
    expectCompleteRun(out, what);
  });

  it('validate, a missing input, stderr full: exit 2, as its summary says', async () => {
    const r = await runBroken(['validate', '--dataset', 'vitals', '--input', join(tempDir(), 'no_such_file.csv')], { stdout: 'pipe', stderr: 'full' });
    expect(r.code, r.stdout).toBe(2);
    expect(lastLine(r.stdout)).toMatchObject({ command: 'validate', status: 'error', exit_code: 2, error: { code: 'HCP_ERR_INPUT_MISSING' } });
  });

  it('process, stdout full (> /dev/full): exit 0, the output committed, a warning and no stack trace', async () => {
    const out = join(tempDir(), 'out');
    const r = await runBroken(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, ...OPTS], { stdout: 'full', stderr: 'pipe' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: the JSON summary could not be written to stdout \(ENOSPC\)$/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(out, 'curated', 'vitals')), r.stderr).toBe(true);
    expect(existsSync(join(out, '_locks')) ? readdirSync(join(out, '_locks')) : []).toEqual([]);
    expect(existsSync(join(out, '_staging')) ? readdirSync(join(out, '_staging')) : []).toEqual([]);
  });
});

describe('an output directory that cannot be one (--out, --landing): exit 2 naming the option, nothing written', () => {
  const dir = tempDir();
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a directory\n');
  const readOnly = join(dir, 'read-only');
  mkdirSync(readOnly, { mode: 0o555 });
  mkdirSync(join(dir, 'landing-ds-file'));
  writeFileSync(join(dir, 'landing-ds-file', 'vitals'), 'not a directory\n');
  const asRoot = process.getuid?.() === 0;
  const out = (p: string) => ['--out', p];
  const process_ = (p: string) => ['process', '--dataset', 'vitals', '--input', VITALS, ...out(p)];
  const run = (p: string) => ['run', '--vitals', VITALS, '--labs', LABS, ...out(p)];
  const partition = (p: string) => ['partition', '--dataset', 'vitals', '--input', VITALS, '--landing', p];
  it.each<[string, string[], RegExp]>([
    ['process, --out a file', process_(file), /--out/],
    ['process, --out under a file', process_(join(file, 'out')), /--out/],
    ['run, --out a file', run(file), /--out/],
    ['partition, --landing a file', partition(file), /--landing/],
    ['generate, --out a file', ['generate', '--rows', '5', ...out(file)], /--out/],
    ['partition, --landing under a file', partition(join(file, 'landing')), /--landing/],
    ['partition, --landing whose dataset directory is a file', partition(join(dir, 'landing-ds-file')), /--landing/],
    // procfs answers ENOENT to a mkdir under a directory that exists: Node's recursive mkdir loops there for ever,
    // deaf to SIGTERM (its handler never runs).
    ...(existsSync('/proc/self')
      ? ([
          ['process, --out under /proc', process_('/proc/hcp-no-such-dir/out'), /--out/],
          ['generate, --out under /proc', ['generate', '--rows', '5', ...out('/proc/hcp-no-such-dir/out')], /--out/],
        ] as [string, string[], RegExp][])
      : []),
    ...(asRoot ? [] : ([['process, --out in a read-only directory', process_(join(readOnly, 'out')), /--out/]] as [string, string[], RegExp][])),
  ])('%s', async (_, args, option) => {
    const before = snapshot(dir);
    const r = await runCli([...args, ...OPTS], { timeoutMs: 20_000 });
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.json).toMatchObject({ status: 'error', exit_code: 2, error: { code: 'HCP_ERR_OUTPUT_UNUSABLE' } });
    expect(r.json!.error.message).toMatch(option);
    expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
    expect(snapshot(dir)).toEqual(before);
  });
});

describe('a --metrics-file that cannot be written: exit 2 naming the option, before anything is written', () => {
  // It was only a warning after the whole run ("metrics file not written: EISDIR…"), exit 0.
  const dir = tempDir();
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a directory\n');
  mkdirSync(join(dir, 'a-dir.prom'));
  const readOnly = join(dir, 'read-only');
  mkdirSync(readOnly, { mode: 0o555 });
  // Outputs for stats and report, which touch the output before their metrics start: `stats` makes DIR/stats,
  // `report` over a process since the last stats removes _SUCCESS.
  const done = join(dir, 'done');
  const processed = join(dir, 'processed');
  beforeAll(async () => {
    for (const args of [
      ['run', '--vitals', VITALS, '--labs', LABS, '--out', done],
      ['process', '--dataset', 'vitals', '--input', VITALS, '--out', processed],
      ['run', '--vitals', VITALS, '--labs', LABS, '--out', join(dir, 'stale')],
      ['process', '--dataset', 'vitals', '--input', VITALS, '--out', join(dir, 'stale')],
    ]) {
      const ok = await runCli([...args, ...OPTS]);
      expect(ok.code, describeRun(ok)).toBe(0);
    }
    expect(existsSync(join(processed, 'stats'))).toBe(false);
    expect(existsSync(join(dir, 'stale', '_SUCCESS'))).toBe(true);
  }, 60_000);
  const process_ = (prom: string) => ['process', '--dataset', 'vitals', '--input', VITALS, '--out', join(dir, 'out'), '--metrics-file', prom];
  const asRoot = process.getuid?.() === 0;
  it.each<[string, string[]]>([
    ['process, a directory', process_(join(dir, 'a-dir.prom'))],
    ['process, under a file', process_(join(file, 'x.prom'))],
    ['process, deep under a file', process_(join(file, 'a', 'b', 'x.prom'))],
    ['run, a directory', ['run', '--vitals', VITALS, '--labs', LABS, '--out', join(dir, 'out'), '--metrics-file', join(dir, 'a-dir.prom')]],
    ['partition, under a file', ['partition', '--dataset', 'vitals', '--input', VITALS, '--landing', join(dir, 'landing'), '--metrics-file', join(file, 'x.prom')]],
    ['stats, a directory', ['stats', '--out', done, '--metrics-file', join(dir, 'a-dir.prom')]],
    ['stats of a new output (no DIR/stats yet), a directory', ['stats', '--out', processed, '--metrics-file', join(dir, 'a-dir.prom')]],
    ['report, under a file', ['report', '--out', done, '--metrics-file', join(file, 'x.prom')]],
    ['report over stale statistics (it removes _SUCCESS), under a file', ['report', '--out', join(dir, 'stale'), '--metrics-file', join(file, 'x.prom')]],
    // Permission bits say nothing there, even for root: the check creates a file to find out.
    ...(existsSync('/proc/self') ? ([['process, in /proc', process_('/proc/hcp.prom')], ['process, under /proc', process_('/proc/hcp-no-such-dir/x.prom')]] as [string, string[]][]) : []),
    ...(asRoot ? [] : ([['process, in a read-only directory', process_(join(readOnly, 'x.prom'))], ['stats, under a read-only directory', ['stats', '--out', done, '--metrics-file', join(readOnly, 'sub', 'x.prom')]]] as [string, string[]][])),
  ])('%s', async (_, args) => {
    const before = snapshot(dir);
    const r = await runCli([...args, ...OPTS], { timeoutMs: 20_000 });
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.json).toMatchObject({ status: 'error', exit_code: 2, error: { code: 'HCP_ERR_OUTPUT_UNUSABLE', message: expect.stringMatching(/^--metrics-file .* cannot be written: /) } });
    expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
    expect(snapshot(dir)).toEqual(before);
    expect(readdirSync(dir).sort()).toEqual(['a-dir.prom', 'a-file', 'done', 'processed', 'read-only', 'stale']);
    expect(existsSync(join(processed, 'stats'))).toBe(false); // an empty directory, which the snapshot of files misses
  });

  it('missing parent directories are made, as for --out', async () => {
    const prom = join(tempDir(), 'textfile', 'sub', 'x.prom');
    const r = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', join(tempDir(), 'out'), '--metrics-file', prom, ...OPTS]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(readFileSync(prom, 'utf8')).toMatch(/^hcp_rows_total\{/m);
    expect(readdirSync(join(prom, '..'))).toEqual(['x.prom']);
  });
});

describe('--metrics-port that cannot be served', () => {
  it('a port already in use: exit 2 naming the option, before anything is written', async () => {
    const { createServer } = await import('node:net');
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = String((busy.address() as { port: number }).port);
    try {
      const out = join(tempDir(), 'out');
      const r = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, '--metrics-port', port, ...OPTS]);
      expect(r.code, describeRun(r)).toBe(2);
      expect(r.json).toMatchObject({ status: 'error', exit_code: 2, error: { code: 'HCP_ERR_USAGE' } });
      expect(r.json!.error.message).toMatch(new RegExp(`--metrics-port ${port}`));
      expect(r.stderr).not.toMatch(/internal error/);
      expect(existsSync(out)).toBe(false);
    } finally {
      busy.close();
    }
  });

  // report removed _SUCCESS before starting its metrics, so a busy port (exit 2, "before anything is done") took a
  // good output's _SUCCESS with it.
  it('report with a port already in use: exit 2, the output and its _SUCCESS as they were', async () => {
    const out = join(tempDir(), 'out');
    const ok = await runCli(['run', '--vitals', VITALS, '--labs', LABS, '--out', out, ...OPTS]);
    expect(ok.code, describeRun(ok)).toBe(0);
    const before = snapshot(out);
    const { createServer } = await import('node:net');
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = String((busy.address() as { port: number }).port);
      const r = await runCli(['report', '--out', out, '--metrics-port', port, '--no-progress']);
      expect(r.code, describeRun(r)).toBe(2);
      expect(r.json!.error.message).toMatch(new RegExp(`--metrics-port ${port}`));
      expect(existsSync(join(out, '_SUCCESS'))).toBe(true);
      expect(snapshot(out)).toEqual(before);
    } finally {
      busy.close();
    }
  });
});

describe('--pushgateway URLs that cannot work, and a gateway that answers with an error page', () => {
  // A URL with credentials never worked (fetch refuses it) and printed the password in three warnings; with a query
  // or fragment, every push went to the gateway's base path (`PUT /gw?x=1`) and the run reported no failure.
  it.each([
    ['credentials', 'http://user:s3cret@HOST'],
    ['a query and a fragment', 'http://HOST/gw?x=1#f'],
    ['a fragment', 'http://HOST/gw#f'],
  ])('a URL with %s: exit 2 naming --pushgateway before anything is written or sent, the password nowhere', async (_, template) => {
    const gateway = await startFakePushgateway();
    try {
      const out = join(tempDir(), 'out');
      const url = template.replace('HOST', gateway.url.slice('http://'.length));
      const r = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, '--pushgateway', url, ...OPTS]);
      expect(r.code, describeRun(r)).toBe(2);
      expect(r.json).toMatchObject({ status: 'error', exit_code: 2, error: { code: 'HCP_ERR_USAGE', message: expect.stringMatching(/^--pushgateway /) } });
      expect(r.stdout + r.stderr).not.toContain('s3cret');
      expect(gateway.received).toEqual([]);
      expect(existsSync(out)).toBe(false);
    } finally {
      await gateway.close();
    }
  });

  it('an HTML error page: one warning line for the failed push, not the page (125 lines of it were logged)', async () => {
    const page = `<!DOCTYPE html>\n<html><body>\n${Array.from({ length: 120 }, (_, i) => `<p>upstream error ${i}</p>`).join('\n')}\n</body></html>\n`;
    const gateway = await startFakePushgateway({ errorPage: { status: 502, body: page } });
    try {
      const r = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', join(tempDir(), 'out'), '--pushgateway', gateway.url, ...OPTS]);
      expect(r.code, describeRun(r)).toBe(0); // a failed push is a warning, the run's outcome does not change
      const lines = r.stderr.split('\n');
      const failed = lines.filter((l) => /metrics push.*failed/.test(l));
      expect(failed, r.stderr).toHaveLength(1);
      expect(failed[0]).toMatch(/HTTP 502 <!DOCTYPE html> <html><body> <p>upstream error 0<\/p>/);
      expect(failed[0].length).toBeLessThan(600);
      expect(lines.filter((l) => l.includes('<p>'))).toHaveLength(1);
    } finally {
      await gateway.close();
    }
  });
});

describe.skipIf(process.getuid?.() === 0)('stats and report on an output directory this user cannot write', () => {
  it.each(['stats', 'report'])('%s: exit 2 HCP_ERR_OUTPUT_UNUSABLE naming --out, the output as it was', async (command) => {
    const out = join(tempDir(), 'out');
    const ok = await runCli(['run', '--vitals', VITALS, '--labs', LABS, '--out', out, ...OPTS]);
    expect(ok.code, describeRun(ok)).toBe(0);
    const before = snapshot(out);
    const { chmodSync } = await import('node:fs');
    const dirs = [out, ...listFiles(out).map((f) => join(out, f, '..'))].filter((d, i, all) => all.indexOf(d) === i);
    for (const d of dirs) chmodSync(d, 0o555);
    try {
      const r = await runCli([command, '--out', out, '--no-progress']);
      expect(r.code, describeRun(r)).toBe(2);
      expect(r.json).toMatchObject({ status: 'error', exit_code: 2, error: { code: 'HCP_ERR_OUTPUT_UNUSABLE', message: expect.stringMatching(/--out/) } });
      expect(snapshot(out)).toEqual(before);
    } finally {
      for (const d of dirs) chmodSync(d, 0o755);
    }
  });
});

describe('a damaged output directory: a file that is not JSON, or not what the engine wrote', () => {
  // JSON of the wrong shape (`null`, `{}`, a hand edit) failed later as an internal TypeError ("Cannot read
  // properties of null"), naming no file; report left the previous _SUCCESS in place.
  let base = '';
  beforeAll(async () => {
    base = join(tempDir(), 'out');
    const ok = await runCli(['run', '--vitals', VITALS, '--labs', LABS, '--out', base, ...OPTS]);
    expect(ok.code, describeRun(ok)).toBe(0);
  });
  const first = (dir: string) => join(dir, readdirSync(dir).filter((f) => f.endsWith('.json')).sort()[0]);
  const manifest = (out: string) => first(join(out, '_manifests', 'vitals'));
  const sketch = (out: string) => first(join(out, 'sketches', 'vitals'));
  /** The file's JSON with one nested field replaced. */
  const edited = (path: string, edit: (v: any) => void) => {
    const v = JSON.parse(readFileSync(path, 'utf8'));
    edit(v);
    return JSON.stringify(v);
  };
  it.each<[string, string, (out: string) => string, (path: string) => string, RegExp]>([
    ['stats', 'a manifest cut short', manifest, () => '{"hospital_id": "H0', /not valid JSON/],
    ['report', 'a manifest cut short', manifest, () => '{"hospital_id": "H0', /not valid JSON/],
    ['stats', 'a manifest that is null', manifest, () => 'null', /expected object/],
    ['report', 'a manifest that is {}', manifest, () => '{}', /at version/],
    ['report', 'a manifest scope without rows', manifest, (p) => edited(p, (v) => delete Object.values<any>(v.scopes)[0].rows), /at scopes\.[^ ]+\.rows/],
    ['report', 'an input manifest of another shape', (out) => first(join(out, '_manifests', 'vitals', 'inputs')), () => '{"version":2}', /at input/],
    ['stats', 'a sketch that is null', sketch, () => 'null', /expected object/],
    ['report', 'a sketch that is null', sketch, () => 'null', /expected object/],
    ['stats', 'a sketch whose moments are a number', sketch, (p) => edited(p, (v) => (Object.values<any>(Object.values<any>(v.months)[0])[0].moments = 5)), /at months\.[^ ]+\.moments/],
    ['report', 'a pending-commit marker that is a list', (out) => join(out, '_manifests', 'vitals', 'pending', 'x.all.json'), () => '[]', /expected object/],
  ])('%s, %s: exit 1 naming the damaged file, no _SUCCESS', async (command, _name, file, content, detail) => {
    const out = join(tempDir(), 'out');
    cpSync(base, out, { recursive: true });
    const damaged = file(out);
    mkdirSync(dirname(damaged), { recursive: true });
    writeFileSync(damaged, content(damaged));
    const r = await runCli([command, '--out', out, '--no-progress']);
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.json).toMatchObject({ status: 'error', exit_code: 1 });
    expect(r.json!.error.message).toContain(damaged);
    expect(r.json!.error.message).toMatch(/the output directory is damaged/);
    expect(r.json!.error.message).toMatch(detail);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    if (command === 'report') expect(existsSync(join(out, '_SUCCESS'))).toBe(false);
  });

  // What the last stats merged, of another shape, was an internal TypeError ("reading 'vitals'") naming no file.
  it.each(['{"version":1}', 'null', '{"version":1,"datasets":{"vitals":"x"}}'])('report, _manifests/stats.json %s: exit 2 "run stats first" naming it, no _SUCCESS', async (content) => {
    const out = join(tempDir(), 'out');
    cpSync(base, out, { recursive: true });
    const file = join(out, '_manifests', 'stats.json');
    writeFileSync(file, content);
    const r = await runCli(['report', '--out', out, '--no-progress']);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.json).toMatchObject({ status: 'error', error: { code: 'HCP_ERR_NO_STATS' } });
    expect(r.json!.error.message).toMatch(/is not a record this engine wrote \(damaged\?\): run stats first/);
    expect(r.json!.error.message).toContain(file);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(false);
  });
});
