#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * healthcare-pipeline: the command line (SPEC §6). Human logs go to stderr;
 * the last line on stdout is a one-line JSON summary. Exit codes: 0 ok,
 * 1 internal error, 2 bad usage or unusable input, 3 quality gate failed.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { Outcome } from './commands/pipeline.js';
import { finished, installSignalHandlers } from './lifecycle.js';
import { bestEffortStdio } from './stdio.js';

/** The command being run, for the summary of a run that fails or is interrupted. */
let command = process.argv.slice(2).find((a) => !a.startsWith('-')) ?? '';

// An interrupted run still ends its stdout with the one-line JSON summary (SPEC §6), as a failed one does.
// Installed before the rest of the CLI is loaded (the imports below, ~70 ms): a signal during start-up, with
// the default action still in place, ended the process with no summary at all. (One during Node's own
// start-up, ~50 ms before any of this runs, still does: nothing in JavaScript can reach it.)
installSignalHandlers((m, exitCode) => {
  process.stderr.write(`error: ${m}\n`);
  process.stdout.write(JSON.stringify({ command, status: 'interrupted', exit_code: exitCode, error: { code: 'HCP_ERR_INTERRUPTED', message: m } }) + '\n');
});
// A log or summary that cannot be written (`run ... | true`, `2>&1 | head -1`, `2>/dev/full`) does not undo the run
// or change its exit code: the lines are dropped (src/stdio.ts).
bestEffortStdio();

const [{ parseCli, need }, { EXIT, PipelineError }, { stderrLogger }, { partitionCommand }, { processCommand, reportCommand, runCommand, statsCommand }, { validateFile }, { generate }, { makeOutputDir }] =
  await Promise.all([
    import('./config.js'),
    import('./errors.js'),
    import('./log.js'),
    import('./commands/partition.js'),
    import('./commands/pipeline.js'),
    import('./commands/validate.js'),
    import('./generate/index.js'),
    import('./sinks/fsutil.js'),
  ]);

const SHARED = `Shared options:
  --workers N            worker threads, 1 to 64 (default: number of cores)
  --chunk-size BYTES     bytes per chunk handed to a worker (default 2097152, at most 1 GiB)
  --period YYYY-MM       reject dates outside this month (date.outside_period)
  --as-of YYYY-MM-DD     reject dates after this day (default: today, UTC)
  --max-reject-rate R    quality gate: max share of rejected rows per hospital and per dataset (default 0.05)
  --min-cell N           public export: blank cells with fewer patients, and cells that would reveal them (default 11)
  --metrics-port P       serve Prometheus metrics on 127.0.0.1:P/metrics while running
  --pushgateway URL      push metrics to a Pushgateway at the end
  --metrics-file PATH    write metrics for node_exporter's textfile collector
  --require-key          fail (exit 2) when HCP_PSEUDONYM_KEY is not set
  --progress / --no-progress   progress line on stderr (default: on for a TTY)
  --debug                stack traces on errors
Environment: HCP_PSEUDONYM_KEY  secret key for patient pseudonyms (HMAC-SHA256)
Exit codes: 0 ok, 1 internal error, 2 bad usage or unusable input, 3 quality gate failed`;

const HELP: Record<string, string> = {
  '': `Usage: healthcare-pipeline <command> [options]

Commands:
  run         every stage for both datasets (defaults: --vitals data/vitals_2024.csv --labs data/lab_results_2024.csv --out output)
  partition   split a combined file into one file per hospital
  validate    file-level preflight of one input file
  process     one pass over one file: rules, curated Parquet, quarantine, sketches
  stats       merge the sketches into monthly statistics
  report      quality report and gates (exit 3 when a gate fails)
  generate    deterministic synthetic vitals and labs with labelled defects

Run "healthcare-pipeline <command> --help" for a command's options.`,
  run: `Usage: healthcare-pipeline run [--vitals FILE] [--labs FILE] [--out DIR] [options]\n\nProcesses both datasets, merges statistics, writes the quality report, _manifest.json and _SUCCESS.\n\n${SHARED}`,
  partition: `Usage: healthcare-pipeline partition --dataset vitals|labs --input FILE --landing DIR [metrics options]\n\nWrites DIR/<dataset>/hospital_id=<H>.csv (invalid hospital IDs: hospital_id=__invalid__.csv), streaming, no row lost. The metrics options record its hcp_stage_duration_seconds{stage="partition"}, hcp_bytes_read_total and hcp_partition_rows_total.`,
  validate: `Usage: healthcare-pipeline validate --dataset vitals|labs --input FILE\n\nChecks the file is readable, has every required column and UTF-8 text. Exit 0 or 2.`,
  process: `Usage: healthcare-pipeline process --dataset vitals|labs --input FILE [--out DIR] [options]\n\nApplies the row rules, writes curated Parquet, quarantine and sketches for the hospitals in FILE.\n\n${SHARED}`,
  stats: `Usage: healthcare-pipeline stats [--out DIR] [--min-cell N] [metrics options]\n\nMerges DIR/sketches into DIR/stats/monthly_<dataset>.{parquet,csv} and monthly_<dataset>_public.csv, and records the commits merged in DIR/_manifests/stats.json.`,
  report: `Usage: healthcare-pipeline report [--out DIR] [--max-reject-rate R] [metrics options]\n\nWrites DIR/quality/report.{json,html}, _manifest.json and (when every gate passes) _SUCCESS. Exit 3 when a gate fails; exit 2 when the statistics are missing or a process committed since the last stats (run stats first), or when a process stopped part-way through committing its hospitals (run it again), and then _SUCCESS is removed.`,
  generate: `Usage: healthcare-pipeline generate --out DIR --rows N --seed S [--hospitals H] [--months M] [--year Y] [--defect-rate R]\n\nWrites DIR/vitals_<year>.csv and DIR/lab_results_<year>.csv with N rows each, plus .labels.csv files listing the defective rows.`,
};

async function dispatch(cfg: Config, log: Logger): Promise<Outcome> {
  switch (cfg.command) {
    case 'run':
      return runCommand(cfg, log);
    case 'process':
      return processCommand(cfg, log);
    case 'stats':
      return statsCommand(cfg, log);
    case 'report':
      return reportCommand(cfg, log);
    case 'partition':
      return partitionCommand(cfg, log);
    case 'validate': {
      const s = validateFile(need(cfg.dataset, 'dataset', 'validate'), need(cfg.input, 'input', 'validate'));
      if (s.empty) log.warn(`${s.input}: no data rows`);
      if (s.extra_columns.length) log.warn(`${s.input}: extra column(s) will be ignored: ${s.extra_columns.join(', ')}`);
      if (!s.sample_utf8) log.warn(`${s.input}: the first 64 KiB hold invalid UTF-8; those rows will be quarantined`);
      return { exitCode: 0, summary: { command: 'validate', status: 'ok', ...s } };
    }
    case 'generate': {
      makeOutputDir(cfg.out, 'out');
      const s = await generate({
        outDir: cfg.out,
        rows: cfg.rows,
        seed: cfg.seed,
        ...(cfg.hospitals !== null && { hospitals: cfg.hospitals }),
        ...(cfg.months !== null && { months: cfg.months }),
        ...(cfg.year !== null && { year: cfg.year }),
        ...(cfg.defectRate !== null && { defectRate: cfg.defectRate }),
      });
      for (const f of s.files) log.info(`generate ${f.dataset}: ${f.rows} rows (${f.defects} labelled defects) → ${f.path}`);
      return { exitCode: 0, summary: { command: 'generate', status: 'ok', files: s.files } };
    }
    default:
      throw new PipelineError('HCP_ERR_USAGE', cfg.command ? `Unknown command "${cfg.command}"` : 'No command given');
  }
}

async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const log = stderrLogger();
  command = argv.find((a) => !a.startsWith('-')) ?? '';
  try {
    const { config, help } = parseCli(argv);
    command = config.command;
    // Own keys only: `constructor --help` printed Object's source.
    const known = Object.hasOwn(HELP, config.command);
    if (help && !known) throw new PipelineError('HCP_ERR_USAGE', `Unknown command "${config.command}"`);
    if (help || !config.command) {
      const text = HELP[config.command];
      process.stdout.write(text + '\n');
      // Without a command, the usage is followed by the usage error's summary line, as for any other usage error.
      if (!help) throw new PipelineError('HCP_ERR_USAGE', `A command is needed: ${Object.keys(HELP).filter(Boolean).join(', ')}`);
      return EXIT.ok;
    }
    const { exitCode, summary } = await dispatch(config, log);
    process.stdout.write(JSON.stringify({ ...summary, exit_code: exitCode }) + '\n');
    return exitCode;
  } catch (e) {
    const known = e instanceof PipelineError;
    const message = known ? e.describe() : e instanceof Error ? e.message : String(e);
    log.error(message);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    else if (!known) log.error('(internal error: rerun with --debug for a stack trace)');
    const exitCode = known ? e.exitCode : EXIT.internal;
    const code = known ? e.code : 'HCP_ERR_INTERNAL';
    // A refusal no wait will end (a lock file holding no pid, takeovers left too deep) says so, for schedulers that
    // retry HCP_ERR_LOCKED: a person has to look (src/sinks/lock.ts).
    const permanent = known && e.context.permanent === true ? { permanent: true } : {};
    process.stdout.write(JSON.stringify({ command, status: 'error', exit_code: exitCode, error: { code, message, ...permanent } }) + '\n');
    return exitCode;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // The summary is written: a signal from now on must not turn its exit code into 128 + n. Leaving it to the
  // event loop to run dry, a SIGTERM during Node's teardown (its handlers gone) ended ~half of the processes
  // killed then with 143 after an "ok" line; exiting once stdout and stderr have taken what was written leaves
  // no such window (src/lifecycle.ts).
  finished(code);
  process.stderr.write('', () => process.stdout.write('', () => process.exit(code)));
});
