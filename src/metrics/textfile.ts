/**
 * Write the metrics for node_exporter's textfile collector (`--metrics-file`).
 *
 * Atomic: the text goes to a temporary file in the same directory (not ending
 * in `.prom`, so the collector never reads it half-written), is fsynced, then
 * renamed over the target.
 *
 * Only the hcp_* series are written. The default process metrics describe a
 * process that has exited by the time the file is read, and names such as
 * process_cpu_seconds_total collide with node_exporter's own metrics.
 *
 * The path is checked when the command starts (`checkMetricsFile`), as `--out`
 * is: a file written only at the end of a run that could never write it was a
 * warning after all the work, exit 0. Missing parent directories are made, as
 * for `--out`, when the file is written.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, openSync, rmSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PipelineError } from '../errors.js';
import { makeOutputDir } from '../sinks/fsutil.js';
import type { PipelineMetrics } from './registry.js';
import type { Family } from './exposition.js';
import { renderFamilies } from './exposition.js';

export const PIPELINE_PREFIX = 'hcp_';

/** The registry's hcp_* families as exposition text. */
export async function renderPipelineMetrics(m: PipelineMetrics): Promise<string> {
  const families = (await m.registry.getMetricsAsJSON()) as unknown as Family[];
  return renderFamilies(families.filter((f) => f.name.startsWith(PIPELINE_PREFIX)));
}

/** The temporary file beside `path` (not ending in `.prom`, so the collector never reads it). */
const tmpBeside = (path: string): string => join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);

/**
 * Fails with exit 2 (HCP_ERR_OUTPUT_UNUSABLE, naming `--metrics-file`) unless `path` can be written at the end of
 * the run: it must not be a directory, and its directory, or the nearest of its parents that exists (the missing
 * ones are made when the file is written, as for `--out`), must be a directory in which this process can create a
 * file. That is tried, not inferred from permission bits, which say nothing for root, a read-only mount or
 * procfs: a file is created there and removed at once. Nothing else is written.
 */
export function checkMetricsFile(path: string): void {
  const fail = (why: string): never => {
    throw new PipelineError('HCP_ERR_OUTPUT_UNUSABLE', `--metrics-file ${path} cannot be written: ${why}`, { file: path, option: 'metrics-file' });
  };
  let isDirectory = false;
  try {
    isDirectory = lstatSync(path).isDirectory();
  } catch {
    // Missing, or under something that is not a directory: the parents' walk says which.
  }
  if (isDirectory) fail('it is a directory');
  let at = dirname(resolve(path));
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(at).isDirectory();
    } catch (e) {
      // ENOTDIR: under a file, which the walk up reaches and names.
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(at) === at) fail((e as Error).message);
      at = dirname(at);
      continue;
    }
    if (!isDir) fail(`${at} is not a directory`);
    break;
  }
  const probe = tmpBeside(join(at, basename(path)));
  try {
    closeSync(openSync(probe, 'wx', 0o600));
  } catch (e) {
    fail((e as Error).message);
  }
  rmSync(probe, { force: true });
}

/** Atomically write the hcp_* metrics to `path` (tmp file + rename), making its missing parent directories. */
export async function writeMetricsFile(m: PipelineMetrics, path: string): Promise<void> {
  const text = await renderPipelineMetrics(m);
  makeOutputDir(dirname(path), 'metrics-file');
  const tmp = tmpBeside(path);
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
