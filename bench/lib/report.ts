/**
 * Renders one run's results as a markdown section (tables, ASCII bars,
 * links to SVG charts) plus the SVG files themselves.
 */
import { bytesLabel, int, medianIndex, pct, ratio, rowsLabel, secs } from './format.js';
import type { Result } from './jobs.js';
import { asciiBars, table, type Bar } from './markdown.js';
import { cpuSpeedup, MB, pairedRatio, speedup, STAGES, type BenchResults } from './results.js';
import { barChartSvg } from './svg.js';

const mb = (b: number | null) => (b === null ? 'n/a' : int(b / MB));
const cpu = (x: Result) => (x.cpuS === null ? 'n/a' : x.cpuS.toFixed(1));
const cores = (x: Result) => (x.cpuS === null ? 'n/a' : (x.cpuS / (x.wallMs / 1000)).toFixed(2));
const status = (p: boolean | null) => (p === null ? '—' : p ? '✅ met' : '❌ not met');

/** The headline numbers of a run, kept in a comment so the summary table can be rebuilt from the doc alone. */
export interface Headline {
  rows: number;
  date: string;
  engine: string;
  engineRowsPerS: number;
  vsDuckdb: number | null;
  vsPandas: number | null;
  /** The same ratios by CPU time per row. */
  vsDuckdbCpu?: number | null;
  vsPandasCpu?: number | null;
  pandasRows: number | null;
  workerScaling: number | null;
  /** The main run (all cores) over one worker pinned to one core; absent before it was measured. */
  coreScaling?: number | null;
  rssMB: number | null;
  load: string;
}

export function headline(r: BenchResults): Headline {
  const w1 = r.workers.find((w) => w.workers === 1);
  const w2 = r.workers.find((w) => w.workers === 2);
  return {
    rows: r.input.rows,
    date: r.date,
    engine: `${String(r.versions.engine)} · build ${String(r.versions['engine build (dist fingerprint)'])}`,
    engineRowsPerS: Math.round(r.engine.rowsPerS),
    vsDuckdb: round2(speedup(r.engine, r.duckdb)),
    vsPandas: round2(speedup(r.engine, r.pandas)),
    vsDuckdbCpu: round2(cpuSpeedup(r.engine, r.duckdb)),
    vsPandasCpu: round2(cpuSpeedup(r.engine, r.pandas)),
    pandasRows: r.pandas?.rows ?? null,
    workerScaling: w1 && w2 ? round2(pairedRatio(w2, w1)) : null,
    coreScaling: r.oneCore ? round2(pairedRatio(r.engine, r.oneCore)) : null,
    rssMB: r.engine.maxRssBytes === null ? null : Math.round(r.engine.maxRssBytes / MB),
    load: `${r.machine.loadAtStart[0]} → ${r.loadAtEnd[0]}`,
  };
}

const round2 = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);

export interface Chart {
  readonly file: string;
  readonly svg: string;
}

function toolName(r: BenchResults, x: Result): string {
  if (x.tool === 'engine') return `engine, ${x.workers} workers (process + stats)`;
  if (x.tool === 'duckdb') return `DuckDB ${String(x.extra.version ?? '')} SQL, ${String(x.extra.threads ?? r.options.duckdbThreads)} threads`;
  const v = (x.extra.versions ?? {}) as Record<string, string>;
  return `pandas ${v.pandas ?? ''} + pandera ${v.pandera ?? ''}`;
}

const shortName = (x: Result) => (x.tool === 'engine' ? `engine (${x.workers} workers)` : x.tool === 'duckdb' ? `DuckDB (${x.workers ?? 2} threads)` : 'pandas + pandera');

/** SVG charts: the comparison, throughput by workers, peak RSS by input size, stage breakdown. */
export function charts(r: BenchResults): Chart[] {
  const prefix = `rows-${r.input.rows}`;
  const tools = [r.engine, r.duckdb, r.pandas].filter((x): x is Result => x !== null);
  const out: Chart[] = [
    {
      file: `${prefix}-compare.svg`,
      svg: barChartSvg({
        title: `Same job, ${rowsLabel(r.input.rows)} vitals rows, same run: throughput`,
        unit: 'rows/s (higher is better)',
        bars: tools.map((x) => ({ label: shortName(x), value: x.rowsPerS, text: `${int(x.rowsPerS)} rows/s${x.extrapolatedTo ? ` (at ${rowsLabel(x.rows)})` : ''}` })),
      }),
    },
  ];
  const w1 = r.workers.find((w) => w.workers === 1);
  if (r.workers.length > 0) {
    out.push({
      file: `${prefix}-workers.svg`,
      svg: barChartSvg({
        title: `Throughput vs workers (${rowsLabel(r.input.rows)} rows)`,
        unit: 'rows/s',
        bars: r.workers.map((w) => ({ label: `${w.workers} worker${w.workers === 1 ? '' : 's'}`, value: w.rowsPerS, text: `${int(w.rowsPerS)} rows/s${w1 ? ` (${ratio(pairedRatio(w, w1))})` : ''}` })),
        ...(w1 && r.workers.some((w) => w.workers === 2) ? { reference: { value: w1.rowsPerS * 1.7, label: '1.7× target' } } : {}),
      }),
    });
  }
  if (r.sizes.length > 0) {
    out.push({
      file: `${prefix}-rss.svg`,
      svg: barChartSvg({
        title: 'Engine peak RSS vs input size',
        unit: 'MB',
        bars: r.sizes.map((s) => ({ label: `${rowsLabel(s.rows)} rows`, value: (s.maxRssBytes ?? 0) / MB, text: `${mb(s.maxRssBytes)} MB` })),
        reference: { value: 300, label: '300 MB target' },
      }),
    });
  }
  out.push({
    file: `${prefix}-stages.svg`,
    svg: barChartSvg({
      title: `Engine stage breakdown (${rowsLabel(r.input.rows)} rows, ms summed over workers)`,
      unit: 'ms',
      bars: stageBars(r.engine),
    }),
  });
  return out;
}

function stageBars(e: Result): Bar[] {
  const total = STAGES.reduce((a, s) => a + (e.timings[s] ?? 0), 0);
  return STAGES.map((s) => ({ label: s, value: e.timings[s] ?? 0, text: `${int(e.timings[s] ?? 0)} ms (${total > 0 ? pct((e.timings[s] ?? 0) / total) : 'n/a'})` }));
}

interface ThreadCpu {
  coordinator: number;
  workers: number;
  background: number;
}
interface Phases {
  chunks: number;
  duplicates: number;
  encode: number;
  commit: number;
}

type Extra = Record<string, unknown>;
const threadCpu = (x: Extra) => (x.cpu_ms ?? null) as ThreadCpu | null;
/** All the CPU a run used: its coordinator, workers and other threads. */
const totalCpu = (c: ThreadCpu) => c.coordinator + c.workers + c.background;
const phasesOf = (x: Extra) => (x.phases_ms ?? null) as Phases | null;

/**
 * The runs of `w1` and `wN` to read CPU and phases from: those of the round
 * with the median `process` ratio (the two runs of a round are close in
 * time; on a host whose speed drifts, runs of different rounds are not
 * comparable), or the median runs when per-round data is missing.
 */
export function medianRound(w1: Result, wN: Result): { one: Extra; many: Extra; round: number | null } {
  const a = w1.runExtras;
  const b = wN.runExtras;
  if (!a || !b || a.length !== b.length || a.length === 0) return { one: w1.extra, many: wN.extra, round: null };
  const i = medianIndex(a, (x, k) => Number(x.process_wall_ms) / Number(b[k].process_wall_ms));
  return { one: a[i], many: b[i], round: i + 1 };
}

/**
 * The most `wN` (cores workers) can gain over `w1` given the CPU the
 * `wN` run used: on `cores` cores it cannot finish before its CPU time ÷
 * cores, so the ratio of `process` wall times is at most w1's wall × cores
 * ÷ that CPU. Null without thread times.
 */
export function scalingBound(w1: Extra, wN: Extra, cores: number): number | null {
  const c = threadCpu(wN);
  const wall = Number(w1.process_wall_ms);
  if (!c || !(wall > 0)) return null;
  const cpu = totalCpu(c);
  return cpu > 0 ? (cores * wall) / cpu : null;
}

/** CPU by thread and wall time by phase, per worker count, and the bound the CPU sets on scaling. */
function threadSection(workers: readonly Result[], cores: number): string[] {
  const w1 = workers.find((w) => w.workers === 1);
  const wN = workers.find((w) => w.workers === cores);
  const pair = w1 && wN && wN !== w1 ? medianRound(w1, wN) : null;
  const runOf = (w: Result) => (pair && w === w1 ? pair.one : pair && w === wN ? pair.many : w.extra);
  const rows = workers.filter((w) => threadCpu(runOf(w)) && phasesOf(runOf(w)));
  if (rows.length === 0) return [];
  const s = (ms: number) => (ms / 1000).toFixed(1);
  const md = ['', '#### CPU by thread and wall time by phase', ''];
  md.push(
    table(
      ['workers', 'coordinator CPU s', 'workers CPU s', 'other threads CPU s', 'chunks s', 'duplicates s', 'encode s', 'commit s'],
      rows.map((w) => {
        const c = threadCpu(runOf(w))!;
        const p = phasesOf(runOf(w))!;
        return [String(w.workers), s(c.coordinator), s(c.workers), s(c.background), s(p.chunks), s(p.duplicates), s(p.encode), s(p.commit)];
      }),
    ),
  );
  md.push(
    '',
    `From the \`process\` summary (\`cpu_ms\`, \`phases_ms\`, ${pair?.round ? `round ${pair.round}, the round with the median ratio of 1-worker to ${cores}-worker \`process\` time` : 'median run'}): the coordinator thread; the worker threads while they work for the file; ` +
      "the rest of the process (\"other threads\"): mostly V8's background threads (optimising compiler, concurrent garbage collection), plus the workers' start-up. " +
      'Phases follow one another and add up to the run: set-up and chunks read, checked and applied; held duplicate suspects decided; the row groups still waiting encoded and written; commit.',
  );
  const bound = pair ? scalingBound(pair.one, pair.many, cores) : null;
  if (pair && bound !== null) {
    const cpu = totalCpu(threadCpu(pair.many)!);
    const t1 = Number(pair.one.process_wall_ms);
    const tN = Number(pair.many.process_wall_ms);
    const one = threadCpu(pair.one);
    md.push(
      '',
      `What the CPU allows: the ${cores}-worker \`process\` run used ${s(cpu)} CPU s, so on ${cores} cores it cannot take less than ${s(cpu / cores)} s; ` +
        `against the 1-worker run's ${s(t1)} s that is at most **${ratio(bound)}** (it took ${s(tN)} s: ${ratio(t1 / tN)}, the cores ${pct(cpu / (cores * tN))} busy). ` +
        `1.7× would need ${s(t1 / 1.7)} s: at most ${s((cores * t1) / 1.7)} CPU s with every core busy throughout.` +
        (one
          ? ` The single worker was busy ${pct(one.workers / t1)} of its run; were it never idle, that run would take its ${s(one.workers)} CPU s, and ${cores} workers sharing ` +
            `all ${s(totalCpu(one))} s of it could be at most ${ratio((cores * one.workers) / totalCpu(one))} as fast as that.`
          : ''),
    );
  }
  return md;
}

/** The main run as the one-core comparison names it: `N cores`, or `W workers on N cores` where the two differ. */
const mainRunCores = (r: BenchResults) => (r.engine.workers === r.machine.cores ? `${r.machine.cores} cores` : `${r.engine.workers} workers on ${r.machine.cores} cores`);

/**
 * Scaling with cores rather than workers: the main run (N workers, every
 * core) against one worker pinned to one core, where the coordinator and
 * V8's background threads share the worker's core instead of riding on
 * another one as they do in the 1-worker run with every core.
 */
function oneCoreSection(r: BenchResults): string[] {
  const one = r.oneCore;
  if (!one) return [];
  const e = r.engine;
  const w1 = r.workers.find((w) => w.workers === 1);
  const n = r.machine.cores;
  const many = mainRunCores(r);
  const label = (w: Result, pinned: boolean) => `${w.workers} worker${w.workers === 1 ? '' : 's'}, ${pinned ? `1 core (\`taskset -c ${one.cpu ?? '?'}\`)` : `all ${n} cores`}`;
  const rows = [one, ...(w1 && w1 !== e ? [w1] : []), e].map((w) => [
    label(w, w === one),
    secs(w.wallMs),
    int(w.rowsPerS),
    ratio(pairedRatio(w, one)),
    cpu(w),
    cores(w),
    mb(w.maxRssBytes),
  ]);
  const busy = w1 && w1.cpuS !== null ? cores(w1) : 'more than one';
  const md = ['', `#### One core → ${many}`, ''];
  md.push(table(['run', 'wall s', 'rows/s', 'vs 1 core', 'CPU s', 'cores busy', 'peak RSS MB'], rows));
  md.push(
    '',
    `The same job with one worker pinned to a single CPU (\`process\` and \`stats\` under \`taskset\`), in the comparison block of every round; "vs 1 core" is the median of the rounds' ratios ` +
      `(wall times by round, s: 1 core ${one.wallMsRuns.map((v) => secs(v)).join(', ')}). ` +
      `This is how the engine scales with the machine: ${ratio(pairedRatio(e, one))} from one core to ${many}. ` +
      `It is not the "2 workers vs 1 worker" target, which it does not replace: with every core available, a single worker's run keeps ` +
      `${busy} cores busy, because the coordinator and V8's background threads run beside the worker on another core, so that target compares the ${e.workers}-worker run with about ${busy}.`,
  );
  return md;
}

/**
 * The machine's own scaling next to the engine's: what N threads at once
 * get over one for plain arithmetic and for random memory access
 * (bench/cores.ts), and the engine's N-worker run over its 1-worker run.
 */
function coresSection(r: BenchResults): string[] {
  const c = r.cores;
  const w1 = r.workers.find((w) => w.workers === 1);
  if (!c || c.kernels.length === 0) return [];
  const n = c.threads;
  const wN = r.workers.find((w) => w.workers === n);
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const work: Record<string, string> = {
    compute: 'compute: arithmetic on a 4 KiB table (stays in the L1 cache)',
    memory: 'memory: random read-modify-write over 64 MiB (cache and TLB misses)',
  };
  const rows = c.kernels.map((k) => [
    work[k.kernel] ?? k.kernel,
    s(k.aloneMs),
    s(k.togetherMs),
    ratio(k.scaling),
    k.aloneCpuMs !== null && k.togetherCpuMs !== null ? `${s(k.aloneCpuMs)} → ${s(k.togetherCpuMs)}` : 'n/a',
  ]);
  const pair = w1 && wN && wN !== w1 ? medianRound(w1, wN) : null;
  const t1 = pair ? Number(pair.one.process_wall_ms) : NaN;
  const tN = pair ? Number(pair.many.process_wall_ms) : NaN;
  const engine = t1 > 0 && tN > 0 ? t1 / tN : null;
  if (engine !== null) rows.push([`engine \`process\`, 1 worker → ${n} workers${pair?.round ? ` (round ${pair.round})` : ''}`, s(t1), s(tN), ratio(engine), '—']);
  const md = ['', `#### What this machine gives ${n === 2 ? 'a second thread' : `${n} threads`}`, ''];
  md.push(table(['work', '1 thread alone s', `${n} threads at once s`, `${n} threads ÷ 1`, `CPU s a thread: alone → among ${n}`], rows));
  const best = Math.max(...c.kernels.map((k) => k.scaling));
  const mem = c.kernels.find((k) => k.kernel === 'memory');
  md.push(
    '',
    `bench/cores.ts, in this run: the same fixed work on one thread alone, then on ${n} threads at once (each doing it), alternating ${c.rounds} times; the round with the median ratio` +
      (c.kernels[0].rounds ? ` (all rounds: ${c.kernels.map((k) => `${k.kernel} ${k.rounds.map((x) => ratio((n * x.aloneMs) / x.togetherMs)).join(', ')}`).join('; ')})` : '') +
      '. ' +
      `Perfect hardware gives ${ratio(n)}; this machine gives ${c.kernels.map((k) => `${ratio(k.scaling)} for ${k.kernel}`).join(' and ')}` +
      ` (a thread among ${n} gets less done per CPU second, or waits for a core; above ${ratio(n)}, the host sped up between the two runs of a round). No program scales better here than its own kind of work does.` +
      (engine !== null
        ? ` The engine's \`process\` gets ${ratio(engine)}: ${pct(engine / best)} of the best kernel's${mem ? ` and ${pct(engine / mem.scaling)} of the memory kernel's` : ''} scaling; ` +
          'the gap is work a second worker cannot share and what running two more costs (the CPU by thread above).'
        : ''),
  );
  return md;
}

/**
 * The Airflow path's first step: the DAG splits the monthly file with
 * `partition` before it runs `process` once per hospital (dags/).
 */
function partitionSection(r: BenchResults): string[] {
  const p = r.partition;
  if (!p) return [];
  return [
    '',
    '### The split before the per-hospital runs (`partition`)',
    '',
    table(
      ['job', 'rows', 'wall s', 'rows/s', 'MB/s', 'of the read floor', 'CPU s', 'peak RSS MB', 'hospital files', 'rows to `__invalid__`'],
      [['engine `partition`', int(p.rows), secs(p.wallMs), int(p.rowsPerS), p.mbPerS.toFixed(1), pct(p.mbPerS / r.floor.mbPerS), cpu(p), mb(p.maxRssBytes), int(Number(p.extra.files)), int(p.rejected)]],
    ),
    '',
    `The Airflow DAG splits the monthly file by hospital (\`partition\`: each hospital's records byte for byte, and a line map so rejects name the monthly file's lines) and then runs \`process\` once per hospital file. The split does no row rules; rows in \`__invalid__\` are the records without a valid hospital_id or with the wrong number of fields, which \`process\` of that file quarantines.${r.options.repeat > 1 ? ` Median of ${r.options.repeat} runs, one a round (s): ${p.wallMsRuns.map((v) => secs(v)).join(', ')}.` : ''}`,
  ];
}

/** The markdown section for one run (without the markers). */
export function renderResults(r: BenchResults, svgDir: string): string {
  const md: string[] = [];
  const e = r.engine;
  const h = headline(r);
  const cmd = r.command;
  md.push(`## ${int(r.input.rows)} rows — ${r.date.slice(0, 10)}`);
  md.push('');
  md.push(
    `\`${cmd}\` · engine \`${r.versions.engine}\` · ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB · Node ${r.machine.node} · ` +
      `load average ${h.load} · ${(r.elapsedS / 60).toFixed(1)} min · ${new Date(r.date).toISOString().replace('T', ' ').slice(0, 16)} UTC`,
  );
  md.push('');
  const parts = [`**${int(e.rowsPerS)} rows/s** (${e.mbPerS.toFixed(1)} MB/s) with ${e.workers} workers on ${int(r.input.rows)} rows (${int(r.input.bytes / MB)} MB)`];
  if (h.vsDuckdb !== null) parts.push(`**${ratio(h.vsDuckdb)} DuckDB**`);
  if (h.vsPandas !== null) parts.push(`**${ratio(h.vsPandas)} pandas + pandera**`);
  if (h.workerScaling !== null) parts.push(`2 workers ${ratio(h.workerScaling)} one worker`);
  if (h.coreScaling != null) parts.push(`${mainRunCores(r)} ${ratio(h.coreScaling)} one core`);
  parts.push(`peak RSS ${mb(e.maxRssBytes)} MB`);
  md.push(`Engine: ${parts.join('; ')}. Ratios are engine throughput ÷ the other tool's, measured in this run on the same input.`);
  if (r.input.rows < 1_000_000) md.push('', `> A small run (${int(r.input.rows)} rows) keeps the bench working; start-up dominates, so its ratios say nothing about the targets, which apply at 10M rows.`);
  md.push('', '### Targets', '');
  md.push(table(['target', 'threshold', 'measured', ''], r.targets.map((t) => [t.name, t.target, t.measured, status(t.pass)]), ['l', 'l', 'r', 'l']));

  md.push('', '### Engine vs what a user would pick instead', '');
  const tools = [r.engine, r.duckdb, r.pandas].filter((x): x is Result => x !== null);
  const rows: string[][] = [['read floor: newline count, 1 MiB reads', int(r.input.rows), secs(r.floor.durationMs), '—', int(r.floor.mbPerS), '—', '—', '—', '—', '—', '—', '—']];
  for (const x of tools) {
    rows.push([
      toolName(r, x) + (x.extrapolatedTo ? ` ¹` : ''),
      int(x.rows),
      secs(x.wallMs),
      int(x.rowsPerS),
      x.mbPerS.toFixed(1),
      x.tool === 'engine' ? '1.00×' : ratio(speedup(r.engine, x)),
      cpu(x),
      cores(x),
      x.tool === 'engine' ? '1.00×' : ratio(cpuSpeedup(r.engine, x)),
      mb(x.maxRssBytes),
      int(x.accepted),
      int(x.rejected),
    ]);
  }
  md.push(table(['job', 'rows', 'wall s', 'rows/s', 'MB/s', 'engine ÷ tool', 'CPU s', 'cores busy', 'engine ÷ tool by CPU', 'peak RSS MB', 'curated', 'rejected'], rows));
  md.push('');
  md.push(asciiBars(tools.map((x) => ({ label: shortName(x), value: x.rowsPerS, text: `${int(x.rowsPerS)} rows/s` }))));
  md.push('', `![throughput of the same job](${svgDir}/rows-${r.input.rows}-compare.svg)`);
  md.push(
    '',
    '"engine ÷ tool" compares wall-clock throughput (what the targets mean). "by CPU" compares CPU seconds (user + system) per row: the work each tool spends on a row whatever the number of cores it keeps busy, and less disturbed by other load on the machine. "cores busy" = CPU seconds ÷ wall seconds.',
  );
  const share = e.mbPerS / r.floor.mbPerS;
  md.push(
    '',
    `The engine moves ${e.mbPerS.toFixed(1)} MB/s, ${pct(share)} of the read floor (${int(r.floor.mbPerS)} MB/s)${share < 0.2 ? ': the job is bound by CPU, not by reading' : ''}. ` +
      `Wall times include process start-up for every tool; the engine's is \`process\` + \`stats\` (${secs(Number(e.extra.process_wall_ms))} s + ${secs(Number(e.extra.stats_wall_ms))} s).`,
  );
  if (r.options.repeat > 1) {
    md.push('', `Each configuration ran ${r.options.repeat} times, in rounds (the compared runs back to back, the other configurations rotating; see Method); the tables show the median wall time and the largest peak RSS, and every ratio between two configurations is the median of the rounds' ratios (the two runs of a round are close in time, so a drift in the host's speed over the run cancels), not the ratio of the medians. Wall times of the runs (s): ${tools.map((x) => `${x.tool} ${x.wallMsRuns.map((v) => secs(v)).join(', ')}`).join('; ')}.`);
  }
  if (r.pandas?.extrapolatedTo) md.push('', `¹ pandas ran on ${int(r.pandas.rows)} rows (${r.pandas.extra.reason ?? 'see notes'}); its rows/s stands in for ${int(r.pandas.extrapolatedTo)} rows, which flatters pandas (its memory grows with the input).`);

  if (r.workers.length > 0) {
    md.push('', '### Scaling with workers', '');
    const w1 = r.workers.find((w) => w.workers === 1);
    md.push(
      table(
        ['workers', 'wall s', 'rows/s', 'vs 1 worker', 'CPU s', 'cores busy', 'peak RSS MB'],
        r.workers.map((w) => [String(w.workers), secs(w.wallMs), int(w.rowsPerS), w1 ? ratio(pairedRatio(w, w1)) : 'n/a', cpu(w), cores(w), mb(w.maxRssBytes)]),
      ),
    );
    md.push('', `"cores busy" = CPU seconds ÷ wall seconds; the coordinator thread works too, so it can exceed the worker count, up to the machine's ${r.machine.cores} cores.`);
    if (r.options.repeat > 1) {
      md.push('', `"vs 1 worker" is the median of the rounds' ratios. Wall times by round (s): ${r.workers.map((w) => `${w.workers}w ${w.wallMsRuns.map((v) => secs(v)).join(', ')}`).join('; ')}.`);
    }
    md.push('', asciiBars(r.workers.map((w) => ({ label: `${w.workers}w`, value: w.rowsPerS, text: `${int(w.rowsPerS)} rows/s` }))));
    md.push('', `![throughput vs workers](${svgDir}/rows-${r.input.rows}-workers.svg)`);
    md.push(...threadSection(r.workers, r.machine.cores));
    md.push(...oneCoreSection(r));
    md.push(...coresSection(r));
  }
  if (r.chunks.length > 0) {
    md.push('', `### Chunk size (${r.engine.workers} workers)`, '');
    md.push(table(['chunk size', 'wall s', 'rows/s', 'cores busy', 'peak RSS MB'], r.chunks.map((c) => [c.chunkSize === null ? 'default' : bytesLabel(c.chunkSize!), secs(c.wallMs), int(c.rowsPerS), cores(c), mb(c.maxRssBytes)])));
  }
  if (r.sizes.length > 0) {
    md.push('', `### Scaling with input size (${r.engine.workers} workers)`, '');
    const s0 = r.sizes[0];
    md.push(
      table(
        ['rows', 'MB', 'wall s', 'rows/s', 'peak RSS MB', 'RSS vs smallest'],
        r.sizes.map((s) => [int(s.rows), int(s.bytes / MB), secs(s.wallMs), int(s.rowsPerS), mb(s.maxRssBytes), s0.maxRssBytes && s.maxRssBytes ? `${s.maxRssBytes >= s0.maxRssBytes ? '+' : ''}${((s.maxRssBytes / s0.maxRssBytes - 1) * 100).toFixed(1)} %` : 'n/a']),
      ),
    );
    md.push('', asciiBars(r.sizes.map((s) => ({ label: rowsLabel(s.rows), value: (s.maxRssBytes ?? 0) / MB, text: `${mb(s.maxRssBytes)} MB` }))));
    md.push('', `![peak RSS vs input size](${svgDir}/rows-${r.input.rows}-rss.svg)`);
  }

  md.push(...partitionSection(r));

  md.push('', '### Where the time goes', '');
  const total = STAGES.reduce((a, s) => a + (e.timings[s] ?? 0), 0);
  md.push(
    `Engine stages from the \`process\` summary (\`timings_ms\`), summed over ${e.workers} workers and the coordinator, so they add up to more than the ${secs(Number(e.extra.process_wall_ms))} s wall time (${int(total)} ms in all):`,
  );
  md.push('', asciiBars(stageBars(e)));
  md.push('', `![engine stage breakdown](${svgDir}/rows-${r.input.rows}-stages.svg)`);
  for (const x of [r.duckdb, r.pandas]) {
    if (!x) continue;
    const steps = Object.entries(x.timings);
    md.push('', `${x.tool === 'duckdb' ? 'DuckDB' : 'pandas + pandera'} steps (wall ms, in order): ${steps.map(([k, v]) => `${k} ${int(v)}`).join(' · ')}.`);
  }

  md.push('', '### Versions', '');
  md.push(table(['component', 'version'], Object.entries(r.versions).map(([k, v]) => [k, v ?? 'n/a']), ['l', 'l']));
  if (r.notes.length > 0) md.push('', '### Notes', '', ...r.notes.map((n) => `- ${n}`));
  md.push('', `<!-- bench:data ${JSON.stringify(h)} -->`);
  return md.join('\n');
}
