/**
 * `npm run bench`: how fast is the engine, how does it scale with cores and
 * input size, where does the time go, and how does it compare with what a
 * user would pick instead — all measured in one run, reported as ratios.
 *
 *   generate inputs (cached: DIR/data/vitals-<rows>-s<seed>-h<H>/)
 *      │
 *      ├─ read floor ........ newline count, 1 MiB reads (also warms the page cache)
 *      ├─ cores reference ... the same work on 1 thread, then on N at once (bench/cores.ts)
 *      └─ rounds ×repeat .... every job once per round (bench/lib/plan.ts):
 *           [pandas + pandera → DuckDB SQL → engine (max workers, --rows) → engine at each other --workers]
 *           │ each other --chunk-sizes │ each other --sizes │ partition   (units rotate one place a round)
 *      ▼
 *   DIR/results-<rows>.json ─► markdown + SVG ─► docs/PERFORMANCE.md (rows ≥ 1M) or DIR/PERFORMANCE.md
 *
 * Every tool runs as a child process under /usr/bin/time -v (peak RSS);
 * wall time is measured around the child. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { VITALS } from '../src/registry.js';
import { mergeDoc, readIfExists } from './lib/docs.js';
import { CLI, ensureInput, type Input } from './lib/data.js';
import { int, rowsLabel } from './lib/format.js';
import { coresJob, floorJob, oneCoreCpu, summarise, type JobContext, type Result } from './lib/jobs.js';
import { engineCommit, loadNow, machine, packageVersion, projectVersion } from './lib/machine.js';
import { parseOptions, USAGE, type BenchOptions } from './lib/options.js';
import { planJobs, runRounds } from './lib/plan.js';
import { GNU_TIME } from './lib/proc.js';
import { linearRegistry } from './lib/registry.js';
import { charts, renderResults } from './lib/report.js';
import { checkTargets, MB, type BenchResults } from './lib/results.js';
import { snapshotEngine } from './lib/snapshot.js';

const t0 = performance.now();
const log = (s: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${s}\n`);

/** The engine's default --chunk-size, read from its --help (null when not found). */
function engineDefaultChunk(cli: string): number | null {
  const help = execFileSync(process.execPath, [cli, 'process', '--help'], { encoding: 'utf8' });
  const m = /--chunk-size[^\n]*default (\d+)/.exec(help);
  return m ? Number(m[1]) : null;
}

interface Comparison {
  engine: Result;
  duckdb: Result | null;
  pandas: Result | null;
}

function standingNotes(o: BenchOptions, c: Comparison): string[] {
  const notes = [
    `Input: \`node dist/src/cli.js generate --rows N --seed ${o.seed} --hospitals ${o.hospitals}\` (12 months, about 3 % labelled defects, some quoted fields and embedded newlines); every tool gets the same file, \`--as-of ${o.asOf}\` and pseudonym key.`,
    'Engine job = `process --dataset vitals --workers N` then `stats` (the statistics come from merged sketches); the reference jobs compute the same statistics in their own way (exact quantiles).',
  ];
  if (c.duckdb) {
    notes.push(
      'DuckDB job (bench/duckdb-job.ts): patient_key is sha256(key ‖ hospital_id ‖ "|" ‖ patient_id) truncated to 32 hex chars, standing in for HMAC-SHA256 (DuckDB has no HMAC); line_number is the record index + 2.',
    );
    const d = c.duckdb.rejected - c.engine.rejected;
    if (d !== 0) {
      notes.push(
        `DuckDB rejected ${int(Math.abs(d))} ${d < 0 ? 'fewer' : 'more'} rows than the engine: its CSV reader accepts a record with one trailing empty field (\`…,bpm,\`) as a 6-field row, which the engine rejects as \`row.field_count\`; catching those needs \`null_padding\`, which DuckDB allows only with its single-threaded reader, so the faster (favourable to DuckDB) setting is used.`,
      );
    }
  }
  if (c.pandas) {
    const d = c.pandas.rejected - (c.pandas.rows === c.engine.rows ? c.engine.rejected : c.pandas.rejected);
    notes.push(
      `pandas job (bench/pandas_job.py): \`read_csv(engine="pyarrow")\` with a bad-line callback, one pandera check per rule code validated lazily, real HMAC-SHA256 once per distinct patient, \`to_parquet(partition_cols=["hospital_id", "month"])\`.${d !== 0 ? ` It rejected ${int(Math.abs(d))} ${d < 0 ? 'fewer' : 'more'} rows than the engine.` : ' It rejected exactly the rows the engine rejected.'}`,
    );
  } else if (o.pandasSkipReason) {
    notes.push(`pandas + pandera not run: ${o.pandasSkipReason}.`);
  }
  return notes;
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseOptions(argv);
  if (parsed === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const o = parsed;
  if (o.render) {
    // Re-render a recorded run (after a change to the report's layout): no measuring.
    // Targets are checked again, so a change in how a ratio is computed reaches recorded runs too.
    const recorded = JSON.parse(readFileSync(o.render, 'utf8')) as BenchResults;
    const results: BenchResults = { ...recorded, targets: checkTargets(recorded) };
    publish(results, o.writeDocsGiven ?? results.input.rows >= 1_000_000, o);
    return 0;
  }
  for (const f of [CLI, 'dist/bench/duckdb-job.js', 'dist/bench/floor.js', 'dist/bench/cores.js']) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first (npm run bench does)`);
  }
  if (!existsSync(GNU_TIME)) log(`${GNU_TIME} not found (apt-get install -y time): peak RSS will be n/a`);
  const date = new Date().toISOString();
  const m = machine();
  mkdirSync(o.out, { recursive: true });
  const registryPath = join(o.out, 'registry-vitals.json');
  writeFileSync(registryPath, JSON.stringify(linearRegistry(VITALS), null, 2) + '\n');
  const engine = snapshotEngine(o.out, o.engineDist);
  const commit = o.engineDist === 'dist' ? engineCommit() : `snapshot of ${o.engineDist}`;
  log(`engine build ${engine.build} (copied to ${dirname(dirname(dirname(engine.cli)))})`);
  const ctx: JobContext = {
    cli: engine.cli,
    out: o.out,
    asOf: o.asOf,
    keepOutputs: o.keepOutputs,
    duckdbThreads: o.duckdbThreads,
    python: o.python,
    registryPath,
    pandasTimeoutS: o.pandasTimeoutS,
  };
  log(`rows ${int(o.rows)}, sizes ${o.sizes.map(rowsLabel).join(',')}, workers ${o.workers.join(',')}, chunk sizes ${o.chunkSizes.join(',')}, repeat ${o.repeat}; load ${m.loadAtStart.join(' ')}`);

  const input = ensureInput(o.out, o.rows, o.seed, o.hospitals, log, engine.cli);
  const sizeInputs = o.sizes.map((n) => (n === o.rows ? input : ensureInput(o.out, n, o.seed, o.hospitals, log, engine.cli)));

  const floor = await floorJob(input, Math.max(3, o.repeat));
  log(`read floor: ${int(floor.mbPerS)} MB/s (${floor.durationMs} ms for ${int(floor.bytes / MB)} MB)`);

  const maxWorkers = o.workers[o.workers.length - 1];
  const cores = maxWorkers > 1 ? await coresJob(maxWorkers, o.rows, Math.max(3, o.repeat)) : null;
  for (const k of cores?.kernels ?? []) log(`cores reference, ${k.kernel}: ${maxWorkers} threads at once ${k.scaling.toFixed(2)}× one alone`);
  const defaultChunk = engineDefaultChunk(engine.cli);
  const pandasInput = o.skipPandas ? null : o.pandasRows === o.rows ? input : ensureInput(o.out, o.pandasRows, o.seed, o.hospitals, log, engine.cli);
  const oneCore = maxWorkers > 1 ? oneCoreCpu() : null;
  if (maxWorkers > 1 && oneCore === null) log('one-core run skipped: needs taskset (util-linux) and at least 2 allowed CPUs');
  const jobs = planJobs(o, input, sizeInputs, pandasInput, defaultChunk, oneCore);
  const rounds = await runRounds(ctx, o, jobs, log);

  const of = (key: string) => rounds.samples.get(key) ?? [];
  const job = (key: string) => jobs.find((j) => j.key === key)!;
  const main = summarise('engine', input, of('main'), { workers: maxWorkers, chunkSize: null });
  const pandasSamples = of('pandas');
  const c: Comparison = {
    engine: main,
    duckdb: of('duckdb').length ? summarise('duckdb', input, of('duckdb'), { workers: o.duckdbThreads }) : null,
    pandas:
      pandasSamples.length && rounds.pandasInput
        ? summarise('pandas', rounds.pandasInput, pandasSamples, rounds.pandasInput.rows !== o.rows ? { extrapolatedTo: o.rows, extra: { ...pandasSamples[0].extra, reason: rounds.pandasReason } } : {})
        : null,
  };
  const engineAt = (key: string) => summarise('engine', job(key).input, of(key), { workers: job(key).workers, chunkSize: job(key).chunkSize });
  const workers = o.workers.map((w) => (w === maxWorkers ? main : engineAt(`w${w}`)));
  const chunks = o.chunkSizes.map((size) => (size === defaultChunk ? { ...main, chunkSize: size } : engineAt(`c${size}`)));
  const sizes = sizeInputs.map((inp) => (inp.rows === o.rows ? main : engineAt(`s${inp.rows}`)));
  const oneCoreRun = of('core1').length ? { ...engineAt('core1'), cpu: oneCore } : null;
  const partition = of('partition').length ? summarise('partition', input, of('partition')) : null;
  const notes = [...standingNotes(o, c), ...rounds.notes];

  const pv = (c.pandas?.extra.versions ?? {}) as Record<string, string>;
  const base = {
    schema: 1 as const,
    date,
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    options: o,
    machine: m,
    loadAtEnd: loadNow(),
    versions: {
      engine: `${projectVersion()} @ ${commit}`,
      'engine build (dist fingerprint)': engine.build,
      node: process.version,
      'hyparquet-writer': packageVersion('hyparquet-writer'),
      piscina: packageVersion('piscina'),
      '@duckdb/node-api': packageVersion('@duckdb/node-api'),
      duckdb: c.duckdb ? String(c.duckdb.extra.version) : null,
      python: pv.python ?? null,
      pandas: pv.pandas ?? null,
      pandera: pv.pandera ?? null,
      pyarrow: pv.pyarrow ?? null,
      numpy: pv.numpy ?? null,
    },
    input,
    floor,
    cores,
    engine: c.engine,
    duckdb: c.duckdb,
    pandas: c.pandas,
    workers,
    oneCore: oneCoreRun,
    chunks,
    sizes,
    partition,
    notes,
    elapsedS: Math.round((performance.now() - t0) / 1000),
  };
  const results: BenchResults = { ...base, targets: checkTargets(base) };

  writeFileSync(join(o.out, `results-${o.rows}.json`), JSON.stringify(results, null, 2) + '\n');
  publish(results, o.writeDocs, o);
  return 0;
}

/** Writes the markdown section, the SVG charts and (into docs) the results JSON; prints the targets. */
function publish(results: BenchResults, writeDocs: boolean, o: BenchOptions): void {
  const rows = results.input.rows;
  const docPath = writeDocs ? o.docs : join(o.out, 'PERFORMANCE.md');
  const svgDir = join(dirname(docPath), 'performance');
  mkdirSync(svgDir, { recursive: true });
  for (const ch of charts(results)) writeFileSync(join(svgDir, ch.file), ch.svg);
  if (writeDocs) writeFileSync(join(svgDir, `results-${rows}.json`), JSON.stringify(results, null, 2) + '\n');
  const body = renderResults(results, relative(dirname(docPath), svgDir) || '.');
  writeFileSync(docPath, mergeDoc(readIfExists(docPath) ?? '', rows, body, writeDocs ? null : readIfExists(o.docs)));
  log(`wrote ${docPath} and ${svgDir}/rows-${rows}-*.svg`);
  for (const t of results.targets) process.stdout.write(`${t.pass === null ? '  -' : t.pass ? ' ok' : 'NOT'}  ${t.name}: ${t.measured} (target ${t.target})\n`);
  process.stdout.write(`${docPath}\n`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
