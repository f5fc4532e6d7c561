import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHUNK_DURATION_BUCKETS,
  checkMetricsFile,
  createMetrics,
  groupPath,
  pushMetrics,
  serveMetrics,
  writeMetricsFile,
  type PipelineMetrics,
} from '../src/metrics/index.js';
import { startFakePushgateway } from './fake-pushgateway.js';
import { processConfig, removeTempDirs, ROOT, runCli, tempDir } from './helpers.js';

// --- helpers ------------------------------------------------------------------

interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Minimal parser for the text exposition format; throws on a malformed line. */
function parseExposition(text: string): { samples: ParsedSample[]; types: Map<string, string> } {
  const samples: ParsedSample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`malformed exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    // prom-client prints NaN as "Nan"; Prometheus parses it case-insensitively.
    if (Number.isNaN(value) && raw.toLowerCase() !== 'nan') throw new Error(`bad value: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

function valueOf(samples: ParsedSample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
      Object.keys(s.labels).length === Object.keys(labels).length,
  )?.value;
}

/** A run over two hospitals of vitals and one of labs, with known counts. */
function recordKnownRun(m: PipelineMetrics): void {
  m.addRows('vitals', 'H1', 'accepted', 90);
  m.addRows('vitals', 'H1', 'rejected', 10);
  m.addRows('vitals', 'H1', 'accepted', 5); // counters add up
  m.addRows('vitals', 'H2', 'accepted', 40);
  m.addRows('vitals', 'H2', 'rejected', 2);
  m.addRows('labs', 'H1', 'accepted', 30);
  m.addRows('labs', '__invalid__', 'rejected', 3);
  m.addRejectedByRule('vitals', 'value.out_of_range', 7, 'H1');
  m.addRejectedByRule('vitals', 'date.invalid', 4, 'H1');
  m.addRejectedByRule('vitals', 'value.out_of_range', 2, 'H2');
  m.addRejectedByRule('labs', 'hospital_id.invalid', 3, '__invalid__');
  m.addRejectedByRule('vitals', 'unit.not_allowed', 1); // no hospital given
  m.addBytesRead('vitals', 4096);
  m.addBytesRead('labs', 1024);
  m.addPartitionRows('vitals', 150);
  m.observeChunkDuration(0.004);
  m.observeChunkDuration(0.2);
  m.observeChunkDuration(45); // beyond the last bucket
  m.setPoolQueueSize(3);
  m.setPoolUtilization(0.75);
  m.observeStage('parse', 1.5);
  m.observeStage('parse', 0.5); // per-chunk calls add up
  m.observeStage('write', 0.25);
  m.setQualityGate('vitals', 'H1', false);
  m.setQualityGate('vitals', 'H2', true);
  m.setQualityGate('labs', 'H1', true);
  m.setLastSuccess('vitals', 'H2', 1_700_000_000);
  m.setLastSuccess('labs', 'H1', 1_700_000_100);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// --- registry -----------------------------------------------------------------

describe('createMetrics', () => {
  it('holds exactly the recorded values', async () => {
    const m = createMetrics({ collectDefault: false });
    recordKnownRun(m);
    const { samples, types } = parseExposition(await m.registry.metrics());

    expect([...types.keys()].sort()).toEqual([
      'hcp_bytes_read_total',
      'hcp_chunk_duration_seconds',
      'hcp_last_success_timestamp_seconds',
      'hcp_partition_rows_total',
      'hcp_pool_queue_size',
      'hcp_pool_utilization',
      'hcp_quality_gate_passed',
      'hcp_rejected_rows_total',
      'hcp_rows_total',
      'hcp_stage_duration_seconds',
    ]);
    expect(types.get('hcp_chunk_duration_seconds')).toBe('histogram');
    expect(types.get('hcp_rows_total')).toBe('counter');

    const rows = samples.filter((s) => s.name === 'hcp_rows_total');
    expect(rows.map((s) => [s.labels.dataset, s.labels.hospital_id, s.labels.outcome, s.value]).sort()).toEqual(
      [
        ['labs', 'H1', 'accepted', 30],
        ['labs', '__invalid__', 'rejected', 3],
        ['vitals', 'H1', 'accepted', 95],
        ['vitals', 'H1', 'rejected', 10],
        ['vitals', 'H2', 'accepted', 40],
        ['vitals', 'H2', 'rejected', 2],
      ].sort(),
    );
    // {dataset, rule} only: the hospital never becomes a label here.
    expect(
      samples.filter((s) => s.name === 'hcp_rejected_rows_total').map((s) => [s.labels, s.value]),
    ).toEqual(
      expect.arrayContaining([
        [{ dataset: 'vitals', rule: 'value.out_of_range' }, 9],
        [{ dataset: 'vitals', rule: 'date.invalid' }, 4],
        [{ dataset: 'vitals', rule: 'unit.not_allowed' }, 1],
        [{ dataset: 'labs', rule: 'hospital_id.invalid' }, 3],
      ]),
    );
    expect(samples.filter((s) => s.name === 'hcp_rejected_rows_total')).toHaveLength(4);

    expect.soft(valueOf(samples, 'hcp_bytes_read_total', { dataset: 'vitals' })).toBe(4096);
    expect.soft(valueOf(samples, 'hcp_bytes_read_total', { dataset: 'labs' })).toBe(1024);
    expect.soft(valueOf(samples, 'hcp_partition_rows_total', { dataset: 'vitals' })).toBe(150);
    expect.soft(valueOf(samples, 'hcp_pool_queue_size', {})).toBe(3);
    expect.soft(valueOf(samples, 'hcp_pool_utilization', {})).toBe(0.75);
    expect.soft(valueOf(samples, 'hcp_stage_duration_seconds', { stage: 'parse' })).toBe(2);
    expect.soft(valueOf(samples, 'hcp_stage_duration_seconds', { stage: 'write' })).toBe(0.25);
    expect.soft(valueOf(samples, 'hcp_quality_gate_passed', { dataset: 'vitals', hospital_id: 'H1' })).toBe(0);
    expect.soft(valueOf(samples, 'hcp_quality_gate_passed', { dataset: 'vitals', hospital_id: 'H2' })).toBe(1);
    expect.soft(valueOf(samples, 'hcp_last_success_timestamp_seconds', { dataset: 'labs', hospital_id: 'H1' })).toBe(
      1_700_000_100,
    );
    expect.soft(valueOf(samples, 'hcp_chunk_duration_seconds_count', {})).toBe(3);
    expect.soft(valueOf(samples, 'hcp_chunk_duration_seconds_sum', {})).toBeCloseTo(45.204, 9);
    expect.soft(valueOf(samples, 'hcp_chunk_duration_seconds_bucket', { le: '0.005' })).toBe(1);
    expect.soft(valueOf(samples, 'hcp_chunk_duration_seconds_bucket', { le: '30' })).toBe(2);
    expect.soft(valueOf(samples, 'hcp_chunk_duration_seconds_bucket', { le: '+Inf' })).toBe(3);
  });

  it('uses chunk buckets from 1 ms to 30 s', () => {
    expect(CHUNK_DURATION_BUCKETS[0]).toBe(0.001);
    expect(CHUNK_DURATION_BUCKETS.at(-1)).toBe(30);
    expect([...CHUNK_DURATION_BUCKETS].sort((a, b) => a - b)).toEqual(CHUNK_DURATION_BUCKETS);
  });

  it('collects the default process metrics unless told not to', async () => {
    expect(await createMetrics().registry.metrics()).toMatch(/^process_cpu_seconds_total /m);
    expect(await createMetrics({ collectDefault: false }).registry.metrics()).not.toMatch(/process_cpu/);
  });

  it.each([
    ['addRows', (m: PipelineMetrics) => m.addRows('vitals', 'H1', 'accepted', -1)],
    ['addRows NaN', (m: PipelineMetrics) => m.addRows('vitals', 'H1', 'accepted', Number.NaN)],
    ['addRejectedByRule', (m: PipelineMetrics) => m.addRejectedByRule('vitals', 'date.invalid', -2)],
    ['addBytesRead', (m: PipelineMetrics) => m.addBytesRead('vitals', Infinity)],
  ])('rejects a bad count in %s', (_, call) => {
    expect(() => call(createMetrics({ collectDefault: false }))).toThrow(RangeError);
  });
});

// --- serve --------------------------------------------------------------------

describe('serveMetrics', () => {
  it('answers GET /metrics on 127.0.0.1 with the hcp_ series (port 0)', async () => {
    const m = createMetrics();
    recordKnownRun(m);
    const server = await serveMetrics(m, 0);
    try {
      expect(server.port).toBeGreaterThan(0);
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const { samples } = parseExposition(await res.text());
      expect(valueOf(samples, 'hcp_rows_total', { dataset: 'vitals', hospital_id: 'H1', outcome: 'accepted' })).toBe(95);
      expect(samples.some((s) => s.name === 'process_cpu_seconds_total')).toBe(true);
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
    await expect(fetch(`http://127.0.0.1:${server.port}/metrics`)).rejects.toThrow();
  });
});

// --- textfile -------------------------------------------------------------------

describe('writeMetricsFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hcp-textfile-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the hcp_ series atomically and the file parses', async () => {
    const m = createMetrics();
    recordKnownRun(m);
    const path = join(dir, 'pipeline.prom');
    await writeFile(path, 'old content\n');
    await writeMetricsFile(m, path);

    const { samples, types } = parseExposition(await readFile(path, 'utf8'));
    expect([...types.keys()].every((n) => n.startsWith('hcp_'))).toBe(true);
    expect(valueOf(samples, 'hcp_rows_total', { dataset: 'labs', hospital_id: '__invalid__', outcome: 'rejected' })).toBe(3);
    expect(await readdir(dir)).toEqual(['pipeline.prom']); // no temp file left
  });

  it('makes missing parent directories, as for --out', async () => {
    const path = join(dir, 'made', 'for', 'it.prom');
    checkMetricsFile(path);
    await expect(readdir(join(dir, 'made'))).rejects.toThrow(/ENOENT/); // the check makes nothing
    await writeMetricsFile(createMetrics({ collectDefault: false }), path);
    expect(await readdir(join(dir, 'made', 'for'))).toEqual(['it.prom']);
  });

  // Checked when the command starts: it was a warning at the end of the run (EISDIR, ENOTDIR, EACCES), exit 0.
  type Case = [string, (d: string) => Promise<string>, RegExp | null];
  it.each<Case>([
    ['a new file', async (d) => join(d, 'new.prom'), null],
    ['an existing file', async (d) => (await writeFile(join(d, 'old.prom'), 'x'), join(d, 'old.prom')), null],
    ['under missing directories', async (d) => join(d, 'no', 'such', 'x.prom'), null],
    ['a directory', async (d) => (await mkdir(join(d, 'dir.prom')), join(d, 'dir.prom')), /cannot be written: it is a directory/],
    ['under a file', async (d) => (await writeFile(join(d, 'f'), 'x'), join(d, 'f', 'x.prom')), /cannot be written: .*\/f is not a directory/],
    ['deep under a file', async (d) => (await writeFile(join(d, 'g'), 'x'), join(d, 'g', 'a', 'b', 'x.prom')), /cannot be written: .*\/g is not a directory/],
    ...(process.getuid?.() === 0 ? [] : ([['in a read-only directory', async (d: string) => (await mkdir(join(d, 'ro'), { mode: 0o555 }), join(d, 'ro', 'x.prom')), /EACCES/]] as Case[])),
    ...(process.platform === 'linux' ? ([['in /proc (writable by its mode bits, for root)', async () => '/proc/hcp.prom', /cannot be written: (ENOENT|EACCES)/]] as Case[]) : []),
  ])('checkMetricsFile: %s', async (_, make, error) => {
    const d = await mkdtemp(join(tmpdir(), 'hcp-check-'));
    try {
      const path = await make(d);
      const before = (await readdir(d)).sort();
      let thrown: any = null;
      try {
        checkMetricsFile(path);
      } catch (e) {
        thrown = e;
      }
      if (error === null) expect(thrown).toBeNull();
      else expect(thrown).toMatchObject({ code: 'HCP_ERR_OUTPUT_UNUSABLE', exitCode: 2, context: { option: 'metrics-file' }, message: expect.stringMatching(error) });
      expect((await readdir(d)).sort()).toEqual(before); // its trial file is gone
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  it('leaves the previous file and no temp file behind when the write fails', async () => {
    const m = createMetrics({ collectDefault: false });
    const target = join(dir, 'busy.prom');
    await mkdir(join(target, 'child'), { recursive: true }); // rename over a non-empty dir fails
    await expect(writeMetricsFile(m, target)).rejects.toThrow();
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

// --- push -----------------------------------------------------------------------

interface Captured {
  method: string;
  path: string;
  contentType: string | undefined;
  body: string;
}

describe('pushMetrics', () => {
  let server: Server;
  let base: string;
  const captured: Captured[] = [];
  /** What the fake gateway answers to GET /api/v1/metrics. */
  let existingGroups: unknown[] = [];
  let failPathsMatching: RegExp | undefined;

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const body = await readBody(req);
      if (req.method === 'GET' && req.url === '/api/v1/metrics') {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(
          JSON.stringify({ status: 'success', data: existingGroups }),
        );
        return;
      }
      captured.push({ method: req.method!, path: req.url!, contentType: req.headers['content-type'], body });
      if (failPathsMatching?.test(req.url!)) {
        res.writeHead(400).end('pushed metrics are invalid or inconsistent with existing metrics');
        return;
      }
      res.writeHead(200).end();
    });
    base = `http://127.0.0.1:${await listen(server)}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('PUTs one group per hospital, each holding only its own series', async () => {
    captured.length = 0;
    existingGroups = [];
    const m = createMetrics();
    recordKnownRun(m);
    const logs: string[] = [];
    const result = await pushMetrics(
      m,
      `${base}/`,
      [
        { dataset: 'vitals', hospitalIds: ['H1', 'H2'] },
        { dataset: 'labs', hospitalIds: ['H1', '__invalid__'] },
      ],
      (msg) => logs.push(msg),
    );
    expect(result).toEqual({ ok: true });
    expect(logs).toEqual([]);

    expect(captured.map((c) => `${c.method} ${c.path}`)).toEqual([
      'PUT /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H1',
      'PUT /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H2',
      'PUT /metrics/job/healthcare_pipeline/dataset/labs/hospital_id/H1',
      'PUT /metrics/job/healthcare_pipeline/dataset/labs/hospital_id/__invalid__',
    ]);
    const groups = captured.map((c) => {
      const [, dataset, hospital] = /dataset\/([^/]+)\/hospital_id\/([^/]+)$/.exec(c.path)!;
      expect(c.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      return { dataset: dataset!, hospital: hospital!, samples: parseExposition(c.body).samples };
    });

    for (const g of groups) {
      // The gateway rejects grouping labels that disagree with the group.
      for (const s of g.samples) {
        if (s.labels.hospital_id !== undefined) expect(s.labels.hospital_id).toBe(g.hospital);
        if (s.labels.dataset !== undefined) expect(s.labels.dataset).toBe(g.dataset);
        expect(s.labels.job).toBeUndefined();
      }
    }
    const [vH1, vH2, lH1, lInvalid] = groups.map((g) => g.samples);

    expect(valueOf(vH1!, 'hcp_rows_total', { dataset: 'vitals', hospital_id: 'H1', outcome: 'accepted' })).toBe(95);
    expect(valueOf(vH2!, 'hcp_rows_total', { dataset: 'vitals', hospital_id: 'H2', outcome: 'rejected' })).toBe(2);
    expect(valueOf(lInvalid!, 'hcp_rows_total', { dataset: 'labs', hospital_id: '__invalid__', outcome: 'rejected' })).toBe(3);

    // Rejections by rule: each hospital its own; unattributed ones with the dataset's first group.
    const rules = (ss: ParsedSample[]): Array<[string, number]> =>
      ss.filter((s) => s.name === 'hcp_rejected_rows_total').map((s) => [s.labels.rule!, s.value]);
    expect(rules(vH1!).sort()).toEqual([['date.invalid', 4], ['unit.not_allowed', 1], ['value.out_of_range', 7]]);
    expect(rules(vH2!)).toEqual([['value.out_of_range', 2]]);
    expect(rules(lH1!)).toEqual([]);
    expect(rules(lInvalid!)).toEqual([['hospital_id.invalid', 3]]);
    for (const s of [...vH1!, ...vH2!].filter((x) => x.name === 'hcp_rejected_rows_total')) {
      expect(Object.keys(s.labels).sort()).toEqual(['dataset', 'rule']);
    }

    // Dataset-level series: the dataset's first group only.
    expect(valueOf(vH1!, 'hcp_bytes_read_total', { dataset: 'vitals' })).toBe(4096);
    expect(valueOf(lH1!, 'hcp_bytes_read_total', { dataset: 'labs' })).toBe(1024);
    expect(vH2!.some((s) => s.name === 'hcp_bytes_read_total')).toBe(false);
    expect(lInvalid!.some((s) => s.name === 'hcp_bytes_read_total')).toBe(false);

    // Run-level series (stages, chunks, pool, process): the run's first group only.
    const runLevel = ['hcp_stage_duration_seconds', 'hcp_chunk_duration_seconds_count', 'hcp_pool_utilization', 'process_cpu_seconds_total'];
    for (const name of runLevel) {
      expect(vH1!.some((s) => s.name === name)).toBe(true);
      for (const other of [vH2!, lH1!, lInvalid!]) expect(other.some((s) => s.name === name)).toBe(false);
    }
    expect(valueOf(vH1!, 'hcp_stage_duration_seconds', { stage: 'parse' })).toBe(2);

    // Every recorded row is pushed exactly once.
    const pushedRows = groups.flatMap((g) => g.samples).filter((s) => s.name === 'hcp_rows_total');
    expect(pushedRows.reduce((a, s) => a + s.value, 0)).toBe(95 + 10 + 40 + 2 + 30 + 3);
  });

  it('keeps the run-level series with the first group across push calls', async () => {
    captured.length = 0;
    const m = createMetrics({ collectDefault: false });
    recordKnownRun(m);
    expect((await pushMetrics(m, base, { dataset: 'vitals', hospitalIds: ['H2', 'H1'] })).ok).toBe(true);
    expect((await pushMetrics(m, base, { dataset: 'labs', hospitalIds: ['H1', '__invalid__'] })).ok).toBe(true);
    const withStages = captured.filter((c) => c.body.includes('hcp_stage_duration_seconds{'));
    expect(withStages.map((c) => c.path)).toEqual(['/metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H2']);
  });

  it('carries the previous last-success time forward for a group that did not succeed', async () => {
    captured.length = 0;
    existingGroups = [
      {
        labels: { job: 'healthcare_pipeline', dataset: 'vitals', hospital_id: 'H1' },
        hcp_last_success_timestamp_seconds: {
          type: 'GAUGE',
          metrics: [{ labels: { dataset: 'vitals', hospital_id: 'H1', job: 'healthcare_pipeline' }, value: '1.69e+09' }],
        },
      },
      {
        labels: { job: 'other_job', dataset: 'vitals', hospital_id: 'H3' },
        hcp_last_success_timestamp_seconds: { metrics: [{ value: '5' }] },
      },
    ];
    const m = createMetrics({ collectDefault: false });
    for (const h of ['H1', 'H2', 'H3']) m.addRows('vitals', h, 'accepted', 1);
    m.setQualityGate('vitals', 'H1', false); // failed: no last success in this run
    m.setLastSuccess('vitals', 'H2', 1_700_000_000);
    expect(await pushMetrics(m, base, { dataset: 'vitals', hospitalIds: ['H1', 'H2', 'H3'] })).toEqual({ ok: true });
    expect(captured.map((c) => c.method)).toEqual(['PUT', 'PUT', 'PUT']);
    const [h1, h2, h3] = captured.map((c) => parseExposition(c.body).samples);
    const last = 'hcp_last_success_timestamp_seconds';
    expect(valueOf(h1!, last, { dataset: 'vitals', hospital_id: 'H1' })).toBe(1.69e9);
    expect(valueOf(h2!, last, { dataset: 'vitals', hospital_id: 'H2' })).toBe(1_700_000_000); // this run's
    expect(h3!.some((s) => s.name === last)).toBe(false); // another job's value is not ours
    existingGroups = [];
  });

  it('only annotates (POST) groups without rows in this run, e.g. from the report command', async () => {
    captured.length = 0;
    const m = createMetrics(); // with process metrics: they must not reach those groups
    m.setQualityGate('vitals', 'H1', false);
    m.setQualityGate('vitals', 'H2', true);
    m.setLastSuccess('vitals', 'H2', 1_700_000_000);
    m.observeStage('report', 0.5);
    expect(await pushMetrics(m, base, { dataset: 'vitals', hospitalIds: ['H1', 'H2'] })).toEqual({ ok: true });
    expect(captured.map((c) => `${c.method} ${c.path}`)).toEqual([
      'POST /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H1',
      'POST /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H2',
    ]);
    const [h1, h2] = captured.map((c) => parseExposition(c.body).samples);
    expect(h1!.map((s) => s.name)).toEqual(['hcp_quality_gate_passed']); // POST keeps the old last success
    expect(h2!.map((s) => s.name).sort()).toEqual(['hcp_last_success_timestamp_seconds', 'hcp_quality_gate_passed']);
  });

  it('gives a command without rows of its own (partition, stats, report) groups of its own, replaced (PUT), and only annotates the hospitals\' groups', async () => {
    captured.length = 0;
    // A last success in the ALL group: never copied into a command's group.
    existingGroups = [
      {
        labels: { job: 'healthcare_pipeline', dataset: 'vitals', hospital_id: 'ALL' },
        hcp_last_success_timestamp_seconds: { metrics: [{ labels: {}, value: '1.69e+09' }] },
      },
    ];
    const m = createMetrics(); // with process metrics: they go with the stage times
    m.observeStage('report', 0.5);
    m.addBytesRead('labs', 10); // dataset-level: that dataset's own group
    m.setQualityGate('vitals', 'H1', true);
    m.setQualityGate('vitals', 'ALL', true);
    m.setQualityGate('labs', 'H1', false);
    const home = { dataset: 'vitals', hospitalId: 'ALL', command: 'report' };
    const groups = [{ dataset: 'vitals', hospitalIds: ['H1'] }, { dataset: 'labs', hospitalIds: ['H1'] }];
    expect(await pushMetrics(m, base, groups, () => {}, home)).toEqual({ ok: true });
    existingGroups = [];
    expect(captured.map((c) => `${c.method} ${c.path}`)).toEqual([
      'PUT /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/ALL/command/report',
      'PUT /metrics/job/healthcare_pipeline/dataset/labs/hospital_id/ALL/command/report',
      'POST /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H1',
      'POST /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/ALL',
      'POST /metrics/job/healthcare_pipeline/dataset/labs/hospital_id/H1',
    ]);
    const [own, ownLabs, vH1, vAll, lH1] = captured.map((c) => parseExposition(c.body).samples);
    // The run-level series (stage times, process metrics…), and nothing scoped to a hospital or to labs.
    expect(own!.filter((s) => s.name === 'hcp_stage_duration_seconds')).toEqual([{ name: 'hcp_stage_duration_seconds', labels: { stage: 'report' }, value: 0.5 }]);
    expect(own!.some((s) => s.name === 'process_cpu_seconds_total')).toBe(true);
    expect(own!.filter((s) => s.labels.hospital_id !== undefined || s.labels.dataset !== undefined)).toEqual([]);
    expect(ownLabs!).toEqual([{ name: 'hcp_bytes_read_total', labels: { dataset: 'labs' }, value: 10 }]);
    for (const g of [vH1!, vAll!, lH1!]) expect(g.map((s) => s.name)).toEqual(['hcp_quality_gate_passed']);
  });

  it('sends nothing to a command\'s group of a dataset it has no series for (stats over two datasets)', async () => {
    captured.length = 0;
    const m = createMetrics({ collectDefault: false });
    m.observeStage('stats', 0.25);
    const home = { dataset: 'vitals', hospitalId: 'ALL', command: 'stats' };
    const groups = [{ dataset: 'vitals', hospitalIds: [] }, { dataset: 'labs', hospitalIds: [] }];
    expect(await pushMetrics(m, base, groups, () => {}, home)).toEqual({ ok: true });
    expect(captured.map((c) => `${c.method} ${c.path}`)).toEqual(['PUT /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/ALL/command/stats']);
    const stages = parseExposition(captured[0]!.body).samples.filter((s) => s.name === 'hcp_stage_duration_seconds');
    expect(stages).toEqual([{ name: 'hcp_stage_duration_seconds', labels: { stage: 'stats' }, value: 0.25 }]);
  });

  it('gives hospitals missing from the list (e.g. the ALL rollup) a group of their own', async () => {
    captured.length = 0;
    const m = createMetrics({ collectDefault: false });
    recordKnownRun(m);
    m.setQualityGate('vitals', 'ALL', true);
    const logs: string[] = [];
    expect((await pushMetrics(m, base, { dataset: 'vitals', hospitalIds: ['H1'] }, (s) => logs.push(s))).ok).toBe(true);
    expect(captured.map((c) => `${c.method} ${c.path}`)).toEqual([
      'PUT /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H1',
      'POST /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/ALL', // gate only: annotated
      'PUT /metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H2', // has rows: owned by this run
    ]);
    expect(parseExposition(captured[1]!.body).samples.map((s) => s.name)).toEqual(['hcp_quality_gate_passed']);
    expect(logs).toEqual([]);
  });

  it('reports a rejected group as ok:false and still pushes the others', async () => {
    captured.length = 0;
    failPathsMatching = /hospital_id\/H2$/;
    const m = createMetrics({ collectDefault: false });
    recordKnownRun(m);
    const logs: string[] = [];
    const result = await pushMetrics(m, base, { dataset: 'vitals', hospitalIds: ['H1', 'H2'] }, (s) => logs.push(s));
    failPathsMatching = undefined;
    expect(result.ok).toBe(false);
    expect(result.error).toContain('HTTP 400');
    expect(result.error).toContain('hospital_id/H2');
    expect(captured).toHaveLength(2);
    expect(logs.some((l) => l.includes('failed'))).toBe(true);
  });

  it('returns ok:false and does not throw when nothing listens', async () => {
    const m = createMetrics();
    recordKnownRun(m);
    const logs: string[] = [];
    const port = await closedPort();
    const result = await pushMetrics(m, `http://127.0.0.1:${port}`, { dataset: 'vitals', hospitalIds: ['H1', 'H2'] }, (s) =>
      logs.push(s),
    );
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/ECONNREFUSED/);
    expect(logs.length).toBeGreaterThan(0);
  });

  // fetch refuses a URL with credentials, so no push could work, yet the password was in three warnings; a query
  // or fragment swallowed the group path the engine appends (every push went to /gw?x=1, and "succeeded").
  it.each([
    ['credentials', 'http://user:s3cret@HOST/'],
    ['a user alone', 'http://s3cret@HOST'],
    ['a query', 'http://HOST/gw?token=s3cret'],
    ['a fragment', 'http://HOST/gw#s3cret'],
    ['an empty query', 'http://HOST/gw?'],
  ])('refuses a URL with %s: ok:false, no request sent, the secret in no message', async (_, template) => {
    const gateway = await startFakePushgateway();
    try {
      const m = createMetrics({ collectDefault: false });
      recordKnownRun(m);
      const logs: string[] = [];
      const result = await pushMetrics(m, template.replace('HOST', gateway.url.slice('http://'.length)), { dataset: 'vitals', hospitalIds: ['H1', 'H2'] }, (s) => logs.push(s));
      expect(result.ok).toBe(false);
      expect(result.error).toMatch(/credentials|query or a fragment/);
      expect(gateway.received).toEqual([]);
      expect(logs).toHaveLength(1);
      expect([result.error, ...logs].join('\n')).not.toContain('s3cret');
    } finally {
      await gateway.close();
    }
  });

  it('an HTML error page is quoted once, on one line, at most 200 characters of it', async () => {
    const page = `<!DOCTYPE html>\n<html>\n${Array.from({ length: 120 }, (_, i) => `<p>proxy error ${i}</p>`).join('\n')}\n</html>\n`;
    const gateway = await startFakePushgateway({ errorPage: { status: 502, body: page } });
    try {
      const m = createMetrics({ collectDefault: false });
      recordKnownRun(m);
      const logs: string[] = [];
      const result = await pushMetrics(m, gateway.url, [{ dataset: 'vitals', hospitalIds: ['H1', 'H2'] }, { dataset: 'labs', hospitalIds: ['H1', '__invalid__'] }], (s) => logs.push(s));
      expect(result.ok).toBe(false);
      expect(gateway.received.filter((r) => r.startsWith('PUT '))).toHaveLength(4);
      expect(logs.every((l) => !l.includes('\n'))).toBe(true);
      const failed = logs.filter((l) => l.includes('failed'));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toContain(`metrics push to ${gateway.url} failed`);
      expect(failed[0]).toContain('HTTP 502 <!DOCTYPE html> <html> <p>proxy error 0</p>');
      expect(failed[0].match(/<p>/g)!.length).toBeLessThan(15); // of the page's 120
      expect(failed[0]).toContain('and 1 more group(s) failed');
      // The status and ~200 characters of the page, the paths of the first three groups, the count of the others.
      expect(failed[0].length).toBeLessThan(600);
    } finally {
      await gateway.close();
    }
  });

  it('returns ok:false for a malformed URL', async () => {
    const result = await pushMetrics(createMetrics({ collectDefault: false }), 'not a url', { dataset: 'v', hospitalIds: ['H1'] }, () => {});
    expect(result.ok).toBe(false);
  });

  it.each([
    ['vitals', 'H1', '/metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H1'],
    ['labs', '__invalid__', '/metrics/job/healthcare_pipeline/dataset/labs/hospital_id/__invalid__'],
    ['vitals', 'a b', '/metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/a%20b'],
    ['vitals', 'a/b', '/metrics/job/healthcare_pipeline/dataset/vitals/hospital_id@base64/YS9i'],
    ['vitals', '', '/metrics/job/healthcare_pipeline/dataset/vitals/hospital_id@base64/='],
    ['vitals', 'ALL', '/metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/ALL/command/report', 'report'],
  ])('groupPath(%j, %j, %j)', (dataset, hospital, path, command?: string) => {
    expect(groupPath(dataset, hospital, command)).toBe(path);
  });
});

describe('pushMetrics: one deadline for all of a push', () => {
  afterAll(removeTempDirs);
  // Without it each request had 10 s of its own: 14 groups answered after 3 s each held a run 42 s after its
  // commit, and a gateway that accepts and never answers 20 s (the last-success read, then the first PUT).
  const hospitals = Array.from({ length: 12 }, (_, i) => `H${i + 1}`);
  const run = () => {
    const m = createMetrics({ collectDefault: false });
    for (const h of hospitals) m.addRows('vitals', h, 'accepted', 1);
    return m;
  };

  it('a gateway that never answers: gives up at the deadline with one warning', async () => {
    const gw = await startFakePushgateway({ hang: true });
    try {
      const logs: string[] = [];
      const t0 = performance.now();
      const r = await pushMetrics(run(), gw.url, { dataset: 'vitals', hospitalIds: hospitals }, (s) => logs.push(s), undefined, 300);
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(r.ok).toBe(false);
      expect(r.error).toBe('gave up after 0.3 s (the push deadline): 12 group(s) not pushed');
      expect(logs).toEqual([`metrics push to ${gw.url} failed (the run goes on): ${r.error}`]);
      // The last-success read reached the gateway, which never answered it (the fake records a request as it arrives).
      expect(gw.received).toEqual(['GET /api/v1/metrics']);
    } finally {
      await gw.close();
    }
  });

  it('a slow gateway: the groups pushed by the deadline stay pushed, the rest are left', async () => {
    const gw = await startFakePushgateway({ delayMs: 250 });
    try {
      const logs: string[] = [];
      const t0 = performance.now();
      const r = await pushMetrics(run(), gw.url, { dataset: 'vitals', hospitalIds: hospitals }, (s) => logs.push(s), undefined, 700);
      expect(performance.now() - t0).toBeLessThan(2_000); // 13 requests of 250 ms: 3.3 s without a deadline
      expect(r.ok).toBe(false);
      const left = Number(/: (\d+) group\(s\) not pushed$/.exec(r.error ?? '')?.[1]);
      const pushed = gw.requests.filter((q) => q.method === 'PUT').length;
      expect(left).toBeGreaterThan(0);
      // The request under way at the deadline is counted among those left (it may have reached the gateway).
      expect(pushed + left).toBeGreaterThanOrEqual(hospitals.length);
      expect(pushed + left).toBeLessThanOrEqual(hospitals.length + 1);
      expect(logs).toHaveLength(1);
    } finally {
      await gw.close();
    }
  });

  // The deadline's notice was pushed as one more error, so after three failed groups it was only counted in
  // "and N more group(s) failed".
  it('more failed groups than are listed: the deadline is still said', async () => {
    // Every answer a 502 after 50 ms: 37 requests cannot all be answered within the deadline, and at least 4 are.
    const gw = await startFakePushgateway({ errorPage: { status: 502, body: 'bad gateway' }, delayMs: 50 });
    const many = Array.from({ length: 36 }, (_, i) => `H${i + 1}`);
    const m = createMetrics({ collectDefault: false });
    for (const h of many) m.addRows('vitals', h, 'accepted', 1);
    try {
      const logs: string[] = [];
      const r = await pushMetrics(m, gw.url, { dataset: 'vitals', hospitalIds: many }, (s) => logs.push(s), undefined, 1_500);
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/^(PUT \S+: HTTP 502[^;]*; ){3}and \d+ more group\(s\) failed; gave up after 1\.5 s \(the push deadline\): \d+ group\(s\) not pushed$/);
      expect(logs).toEqual([`metrics push to ${gw.url} failed (the run goes on): ${r.error}`]);
    } finally {
      await gw.close();
    }
  });

  // The last-success read's problem was a warning line of its own, before the push's.
  it.each([
    ['every group pushed', 1, [], 'metrics push: cannot read the previous hcp_last_success_timestamp_seconds (GET /api/v1/metrics: HTTP 404): cleared in 1 group(s) pushed'],
    [
      'five groups of six refused',
      6,
      ['H2', 'H3', 'H4', 'H5', 'H6'],
      /^metrics push to \S+ failed \(the run goes on\): PUT \S+\/H2: HTTP 400 refused; PUT \S+\/H3: HTTP 400; PUT \S+\/H4: HTTP 400; and 2 more group\(s\) failed; cannot read the previous hcp_last_success_timestamp_seconds \(GET \/api\/v1\/metrics: HTTP 404\): cleared in 1 group\(s\) pushed$/,
    ],
  ])('the last-success times cannot be read, %s: one warning line that says so', async (_, n, refused: string[], line: string | RegExp) => {
    const hospitals = Array.from({ length: n }, (_, i) => `H${i + 1}`);
    const m = createMetrics({ collectDefault: false });
    for (const h of hospitals) m.addRows('vitals', h, 'accepted', 1);
    const server = createServer((req, res) => {
      req.resume();
      const status = req.method === 'GET' ? 404 : refused.some((h) => req.url!.endsWith(`/${h}`)) ? 400 : 200;
      req.on('end', () => res.writeHead(status).end(status === 400 ? 'refused' : ''));
    });
    const port = await listen(server);
    try {
      const logs: string[] = [];
      const r = await pushMetrics(m, `http://127.0.0.1:${port}`, { dataset: 'vitals', hospitalIds: hospitals }, (s) => logs.push(s));
      expect(r.ok).toBe(refused.length === 0);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(line);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  // `process` reads the last-success time before its PUT: a gateway that was down, or a proxy's error page, gave two
  // warning lines (the read's, then the push's).
  it.each([
    ['nothing listens', async () => ({ url: `http://127.0.0.1:${await closedPort()}`, close: async () => {} })],
    ['an error page', () => startFakePushgateway({ errorPage: { status: 502, body: '<html>\n<p>bad gateway</p>\n</html>' } })],
  ])('process, %s: one stderr line about the push, and the command still succeeds', async (_, start) => {
    const gw = await start();
    try {
      const r = await runCli(['process', '--dataset', 'vitals', '--input', join(ROOT, 'data', 'vitals_2024.csv'), '--out', join(tempDir(), 'out'), '--workers', '1', '--no-progress', '--pushgateway', gw.url]);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.split('\n').filter((l) => /push|hcp_last_success/.test(l));
      expect(lines, r.stderr).toHaveLength(1);
      // Nothing was pushed, so nothing lost its last-success time: the read's problem is not worth a word.
      expect(lines[0]).toMatch(/metrics push to \S+ failed \(the run goes on\): PUT /);
      expect(lines[0]).not.toContain('hcp_last_success');
    } finally {
      await gw.close();
    }
  });

  it('the CLI warns once for a failed push, and the command still succeeds', async () => {
    const landing = tempDir();
    const r = await runCli(['partition', '--dataset', 'vitals', '--input', join(ROOT, 'data', 'vitals_2024.csv'), '--landing', landing, '--pushgateway', `http://127.0.0.1:${await closedPort()}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ status: 'ok', exit_code: 0 });
    expect(r.stderr.split('\n').filter((l) => /metrics push/.test(l))).toHaveLength(1);
  });
});

describe('loading prom-client', () => {
  // The commands load it only when metrics are served, pushed or written
  // (src/commands/pipeline.ts withMetrics): ~60 ms of every command's start-up.
  const loaded = (code: string) =>
    execFileSync(process.execPath, ['--input-type=module', '-e', `import { createRequire } from 'node:module'; ${code}; console.log(Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('prom-client')))`], { cwd: ROOT, encoding: 'utf8' }).trim();

  it.each([
    ['the commands module', "await import('./dist/src/commands/pipeline.js')", 'false'],
    ['the metrics module', "await import('./dist/src/metrics/index.js')", 'true'],
  ])('after importing %s: %s', (_, code, want) => {
    expect(loaded(code)).toBe(want);
  });
});

// --- what the engine records ----------------------------------------------------

describe('processFile: hcp_chunk_duration_seconds', () => {
  it('is the time a worker spent on the chunk, not the time the chunk waited for one', async () => {
    // The built engine, for its worker pool.
    const { processFile } = await import('../dist/src/coordinator.js');
    const { createPool } = await import('../dist/src/pool.js');
    const { silentLogger } = await import('../dist/src/log.js');
    const dir = await mkdtemp(join(tmpdir(), 'hcp-chunks-'));
    try {
      const input = join(dir, 'vitals.csv');
      const rows = Array.from({ length: 400 }, (_, i) => `H1,2024-01-${String((i % 28) + 1).padStart(2, '0')},P${i},heart_rate,${60 + (i % 40)},bpm`);
      await writeFile(input, `hospital_id,measurement_date,patient_id,vital_type,value,unit\n${rows.join('\n')}\n`);
      // Every task waits QUEUED_MS before a worker takes it, as behind a busy pool.
      const QUEUED_MS = 400;
      const pool = createPool(1, () => {});
      const queued = {
        threads: pool.threads,
        get queueSize() {
          return pool.queueSize;
        },
        get utilization() {
          return pool.utilization;
        },
        run: (async (make: Parameters<typeof pool.run>[0]) => {
          await new Promise((r) => setTimeout(r, QUEUED_MS));
          return pool.run(make);
        }) as typeof pool.run,
        destroy: () => pool.destroy(),
      };
      const observed: number[] = [];
      const m = createMetrics({ collectDefault: false });
      const metrics = { ...m, observeChunkDuration: (s: number) => observed.push(s) };
      try {
        const s = await processFile(
          processConfig(input, join(dir, 'out'), { chunkSize: 4096 }),
          queued, silentLogger, metrics,
        );
        expect(s.rows.read).toBe(400);
      } finally {
        await pool.destroy();
      }
      // 400 rows of ~40 bytes in 4 KiB chunks: several chunks, one observation each.
      expect(observed.length).toBeGreaterThan(2);
      for (const sec of observed) expect(sec).toBeLessThan(QUEUED_MS / 1000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('processFile: hcp_bytes_read_total and the summary\'s bytes', () => {
  const HEADER = 'hospital_id,measurement_date,patient_id,vital_type,value,unit';
  const ROWS = Array.from({ length: 300 }, (_, i) => `H1,2024-01-${String((i % 28) + 1).padStart(2, '0')},P${i},heart_rate,${60 + (i % 40)},bpm`);
  const BOM = '\uFEFF';
  // Every byte of the input is read once (the header by the preflight, the rest in chunks): the count is the file's size.
  it.each([
    ['rows, LF', `${HEADER}\n${ROWS.join('\n')}\n`],
    ['rows, CRLF, no final newline', `${HEADER}\r\n${ROWS.join('\r\n')}`],
    ['BOM and rows', `${BOM}${HEADER}\n${ROWS.join('\n')}\n`],
    ['header only', `${HEADER}\n`],
    ['header only, no newline', HEADER],
    ['BOM and header only', `${BOM}${HEADER}\n`],
    ['a lone BOM', BOM],
    ['empty file', ''],
  ])('%s', async (_, text) => {
    const { processFile } = await import('../dist/src/coordinator.js');
    const { createPool } = await import('../dist/src/pool.js');
    const { silentLogger } = await import('../dist/src/log.js');
    const dir = await mkdtemp(join(tmpdir(), 'hcp-bytes-'));
    try {
      const input = join(dir, 'vitals.csv');
      await writeFile(input, text);
      const size = Buffer.byteLength(text);
      const m = createMetrics({ collectDefault: false });
      const pool = createPool(1, () => {});
      try {
        const s = await processFile(
          processConfig(input, join(dir, 'out'), { chunkSize: 1024 }),
          pool, silentLogger, m,
        );
        expect(s.bytes).toBe(size);
      } finally {
        await pool.destroy();
      }
      const { samples } = parseExposition(await m.registry.metrics());
      expect(valueOf(samples, 'hcp_bytes_read_total', { dataset: 'vitals' }) ?? 0).toBe(size);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
