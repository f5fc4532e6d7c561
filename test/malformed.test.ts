/**
 * Malformed inputs and bad usage through the CLI (`process`): each case
 * either fails cleanly — the SPEC §6 exit code, one `error: ...` line on
 * stderr and no stack trace, a JSON summary with status "error" and the
 * HCP_ERR_* code — or exits 0 with the bad rows quarantined and the ledger
 * holding (rows read = curated + quarantined, counted independently).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { preflight } from '../src/coordinator.js';
import { CLI, type CliResult, curatedScan, describeRun, expectErrorCode, isDir, listFiles, prng, query, readQuarantine, removeTempDirs, runCli, tempDir } from './helpers.js';

afterAll(removeTempDirs);

const HEADER = 'hospital_id,measurement_date,patient_id,vital_type,value,unit';
const GOOD = ['H001,2024-01-05,P1,heart_rate,72,bpm', 'H001,2024-01-06,P2,temperature,98.6,F', 'H002,2024-02-07,P3,weight,150,lb'];
const csv = (...lines: string[]) => lines.join('\n') + '\n';
const OPTS = ['--workers', '1', '--as-of', '2024-12-31', '--no-progress'];

interface Run {
  dir: string;
  input: string;
  out: string;
  r: CliResult;
}

/** Writes `content` as the input (or uses the path `content` returns) and runs `process` on it. */
async function processInput(content: string | Buffer | ((dir: string) => string), extra: string[] = [], env?: Record<string, string | undefined>, name = 'input.csv'): Promise<Run> {
  const dir = tempDir('hcp-bad-');
  let input = join(dir, name);
  if (typeof content === 'function') input = content(dir);
  else writeFileSync(input, content);
  const out = join(dir, 'out');
  // An option of OPTS that `extra` gives too is `extra`'s alone (a value option may come once).
  const given = new Set(extra.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]));
  const base = OPTS.filter((a, i) => !given.has(a) && !given.has(OPTS[i - 1]));
  const r = await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', out, ...base, ...extra], { env });
  return { dir, input, out, r };
}

/** A clean failure: exit code, one `error:` line, no stack trace, JSON status "error" with the code. */
function expectCleanError(r: CliResult, exit: number, code: string, message?: RegExp) {
  expect(r.code, describeRun(r)).toBe(exit);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  const errors = lines.filter((l) => l.startsWith('error: '));
  expect(errors, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.json).toMatchObject({ status: 'error', exit_code: exit, error: { code } });
  if (message) {
    expect(errors[0]).toMatch(message);
    expect(r.json!.error.message).toMatch(message);
  }
}

/** Exit 0 and rows read = curated (DuckDB over the Parquet) + quarantined (parsed rejects files). */
async function expectLedger(run: Run, rows?: { read: number; accepted: number; rejected: number }, foreignLocks: string[] = []) {
  const { r, out } = run;
  expect(r.code, describeRun(r)).toBe(0);
  expect(r.json).toMatchObject({ status: 'ok', exit_code: 0 });
  const s = r.json!.rows as { read: number; accepted: number; rejected: number };
  const parts = listFiles(join(out, 'curated', 'vitals')).length;
  const curated = parts === 0 ? 0 : (await query(`SELECT count(*) AS n FROM ${curatedScan(out, 'vitals')}`))[0].n;
  const rejected = (await readQuarantine(out, 'vitals')).length;
  expect({ read: s.read, curated, rejected }).toEqual({ read: curated + rejected, curated: s.accepted, rejected: s.rejected });
  if (rows) expect(s).toEqual(rows);
  // Nothing left behind (but other runs' locks).
  expect(isDir(join(out, '_staging'))).toBe(false);
  expect(listFiles(join(out, '_locks'))).toEqual(foreignLocks);
}

const rejects = async (out: string) =>
  (await readQuarantine(out, 'vitals'))
    .sort((a, b) => Number(a.line_number) - Number(b.line_number))
    .map((x) => Object.assign(x, { line: Number(x.line_number) }) as Record<string, string> & { partition: string; line: number });

// ------------------------------------------------------------------ file-level errors

const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]), Buffer.from('IHDR'), Buffer.alloc(64, 7)]);
const random = (() => {
  const r = prng(99);
  const b = Buffer.alloc(4096);
  for (let i = 0; i < b.length; i++) b[i] = i % 97 === 0 ? 0 : Math.floor(r() * 256);
  return b;
})();

describe('unusable files and bad usage: exit 2, one error line, JSON error code', () => {
  it.each<[string, string | Buffer | ((dir: string) => string), string[], string, RegExp]>([
    ['missing column', csv('hospital_id,measurement_date,patient_id,vital_type,unit', 'H001,2024-01-05,P1,heart_rate,bpm'), [], 'HCP_ERR_BAD_HEADER', /value/],
    ['labs header given as vitals', csv('hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit'), [], 'HCP_ERR_BAD_HEADER', /measurement_date/],
    ['semicolon delimiter', csv(HEADER.replace(/,/g, ';'), GOOD[0].replace(/,/g, ';')), [], 'HCP_ERR_BAD_HEADER', /delimiter/],
    // By quote parity the header ran on to the end of the file, and the last line was read as the header: exit 0, zero rows.
    ['a stray quote in the header, a header line last', csv(`${HEADER},no"te`, ...GOOD.map((r) => `${r},x`), `${HEADER},note`), [], 'HCP_ERR_BAD_HEADER', /malformed quoting/],
    ['PNG bytes', png, [], 'HCP_ERR_NOT_CSV', /UTF-8|binary/],
    ['random bytes with NULs', random, [], 'HCP_ERR_NOT_CSV', /UTF-8|binary/],
    ['missing file', (dir) => join(dir, 'nope.csv'), [], 'HCP_ERR_INPUT_MISSING', /nope\.csv/],
    [
      'a directory',
      (dir) => {
        mkdirSync(join(dir, 'adir.csv'));
        return join(dir, 'adir.csv');
      },
      [],
      'HCP_ERR_INPUT_UNREADABLE',
      /directory/,
    ],
    ['--workers 0', csv(HEADER, ...GOOD), ['--workers', '0'], 'HCP_ERR_USAGE', /--workers must be an integer from 1 to 64 \(got "0"\)/],
    // Given twice, a value option silently kept the last one.
    ['--workers given twice', csv(HEADER, ...GOOD), ['--workers', '2', '--workers=1'], 'HCP_ERR_USAGE', /--workers is given more than once/],
    ['--chunk-size given twice', csv(HEADER, ...GOOD), ['--chunk-size', '65536', '--chunk-size=1048576'], 'HCP_ERR_USAGE', /--chunk-size is given more than once/],
    ['--dataset given twice', csv(HEADER, ...GOOD), ['--dataset', 'vitals'], 'HCP_ERR_USAGE', /--dataset is given more than once/],
    ['--chunk-size abc', csv(HEADER, ...GOOD), ['--chunk-size', 'abc'], 'HCP_ERR_USAGE', /--chunk-size/],
    ['--chunk-size 10 (below the minimum)', csv(HEADER, ...GOOD), ['--chunk-size', '10'], 'HCP_ERR_USAGE', /--chunk-size/],
    ['--period 2024-13', csv(HEADER, ...GOOD), ['--period', '2024-13'], 'HCP_ERR_USAGE', /--period/],
    ['--as-of 2024-02-30', csv(HEADER, ...GOOD), ['--as-of', '2024-02-30'], 'HCP_ERR_USAGE', /--as-of must be a date YYYY-MM-DD \(got "2024-02-30"\)/],
    ['--max-reject-rate 2', csv(HEADER, ...GOOD), ['--max-reject-rate', '2'], 'HCP_ERR_USAGE', /--max-reject-rate/],
    ['an unknown option', csv(HEADER, ...GOOD), ['--bogus'], 'HCP_ERR_USAGE', /bogus/],
  ])('%s', async (_name, content, extra, code, message) => {
    const run = await processInput(content, extra);
    expectCleanError(run.r, 2, code, message);
    // Nothing written: no curated data, no quarantine, no staging left.
    expect(listFiles(run.out).filter((f) => !f.startsWith('_locks/'))).toEqual([]);
    expect(isDir(join(run.out, 'curated'))).toBe(false);
  });

  it('--require-key without HCP_PSEUDONYM_KEY', async () => {
    const run = await processInput(csv(HEADER, ...GOOD), ['--require-key'], { HCP_PSEUDONYM_KEY: undefined });
    expectCleanError(run.r, 2, 'HCP_ERR_KEY_MISSING', /HCP_PSEUDONYM_KEY/);
    expect(isDir(join(run.out, 'curated'))).toBe(false);
  });

  it('--require-key with an empty HCP_PSEUDONYM_KEY', async () => {
    const run = await processInput(csv(HEADER, ...GOOD), ['--require-key'], { HCP_PSEUDONYM_KEY: '' });
    expectCleanError(run.r, 2, 'HCP_ERR_KEY_MISSING');
  });

  // Node decodes the environment as UTF-8, every invalid byte as U+FFFD: these two keys gave byte-identical
  // pseudonyms (a key from /dev/urandom kept little of its entropy), and a key of spaces was taken as it was.
  it.each<[string, string, string[], RegExp]>([
    ['invalid UTF-8 (\\377\\376)', 'a\\377\\376b', [], /not valid UTF-8 text.*hex or base64/],
    ['other invalid UTF-8 (\\375\\374), --require-key', 'a\\375\\374b', ['--require-key'], /not valid UTF-8 text.*hex or base64/],
    ['only spaces', '   ', [], /only white space/],
    ['only spaces, --require-key', '   ', ['--require-key'], /only white space/],
  ])('HCP_PSEUDONYM_KEY of %s: exit 2, nothing written, the key not shown', (_, printf, extra, message) => {
    const dir = tempDir('hcp-bad-');
    const input = join(dir, 'input.csv');
    writeFileSync(input, csv(HEADER, ...GOOD));
    const out = join(dir, 'out');
    // The key's bytes as they are: Node's own spawn takes strings only and would encode them as UTF-8.
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.HCP_PSEUDONYM_KEY;
    const p = spawnSync('/bin/sh', ['-c', 'HCP_PSEUDONYM_KEY="$(printf "$0")" exec "$@"', printf, process.execPath, CLI, 'process', '--dataset', 'vitals', '--input', input, '--out', out, ...OPTS, ...extra], { env, encoding: 'utf8' });
    const stdout = p.stdout;
    const r: CliResult = { code: p.status, signal: p.signal, stdout, stderr: p.stderr, json: JSON.parse(stdout.trim().split('\n').pop() || 'null'), ms: 0 };
    expectCleanError(r, 2, 'HCP_ERR_KEY_INVALID', message);
    expect(r.stderr + r.stdout).not.toMatch(/a\uFFFD|a {3}/);
    expect(existsSync(out)).toBe(false);
  });

  // A test knob (docs/ARCHITECTURE.md, error handling): these failed the run with exit 1, an internal error.
  it.each(['1e12', '1099511627776', '768'])('HCP_DEDUPE_FILTER_BITS=%s', async (bits) => {
    const run = await processInput(csv(HEADER, ...GOOD), [], { HCP_DEDUPE_FILTER_BITS: bits });
    expectCleanError(run.r, 2, 'HCP_ERR_USAGE', /^(error: )?HCP_DEDUPE_FILTER_BITS must be a power of two from 512 to 134217728/);
    expect(existsSync(run.out)).toBe(false);
  });

  it('--dataset must be vitals or labs', async () => {
    const dir = tempDir('hcp-bad-');
    writeFileSync(join(dir, 'x.csv'), csv(HEADER, ...GOOD));
    const r = await runCli(['process', '--dataset', 'blood', '--input', join(dir, 'x.csv'), '--out', join(dir, 'out')]);
    expectCleanError(r, 2, 'HCP_ERR_USAGE', /--dataset/);
  });

  it('process without --input names the option', async () => {
    const r = await runCli(['process', '--dataset', 'vitals', '--out', tempDir()]);
    expectCleanError(r, 2, 'HCP_ERR_USAGE', /--input/);
  });

  it.each(['stats', 'report'])('%s on an output directory with nothing processed', async (command) => {
    const r = await runCli([command, '--out', tempDir()]);
    expectCleanError(r, 2, 'HCP_ERR_NO_SKETCHES');
  });

  it('a failed quality gate: run exits 3, status gate_failed, no _SUCCESS, the report still written', async () => {
    const dir = tempDir('hcp-bad-');
    const vitals = join(dir, 'v.csv');
    const labs = join(dir, 'l.csv');
    writeFileSync(vitals, csv(HEADER, ...GOOD, 'H001,2024-01-05,P9,heart_rate,abc,bpm'));
    writeFileSync(labs, csv('hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit', 'H001,2024-01-05,P1,glucose,90,70-100,mg/dL'));
    const out = join(dir, 'out');
    const r = await runCli(['run', '--vitals', vitals, '--labs', labs, '--out', out, '--max-reject-rate', '0.1', ...OPTS]);
    expect(r.code, describeRun(r)).toBe(3);
    expect(r.json).toMatchObject({ status: 'gate_failed', exit_code: 3, gates: { passed: false } });
    expect(r.json!.gates.failed.some((g: { gate: string; hospital_id: string }) => g.gate === 'reject_rate' && g.hospital_id === 'H001')).toBe(true);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(false);
    expect(existsSync(join(out, 'quality', 'report.json'))).toBe(true);
  });

  it('an unknown command', async () => {
    const r = await runCli(['frobnicate']);
    expectCleanError(r, 2, 'HCP_ERR_USAGE', /frobnicate/);
  });

  it('without HCP_PSEUDONYM_KEY (and no --require-key) process uses the demo key and warns loudly', async () => {
    const run = await processInput(csv(HEADER, ...GOOD), [], { HCP_PSEUDONYM_KEY: undefined });
    await expectLedger(run);
    expect(run.r.stderr).toMatch(/WARNING.*HCP_PSEUDONYM_KEY/);
    const m = JSON.parse(readFileSync(join(run.out, '_manifests', 'vitals', 'hospital_id=H001.json'), 'utf8'));
    expect(m.scopes.all.demo_key).toBe(true);
  });
});

describe('preflight (in process): file-level errors carry their code', () => {
  it.each<[string, (dir: string) => string, string]>([
    ['missing file', (dir) => join(dir, 'nope.csv'), 'HCP_ERR_INPUT_MISSING'],
    ['directory', (dir) => dir, 'HCP_ERR_INPUT_UNREADABLE'],
    // Its size is 0, so it passed as an empty file (zero rows, exit 0) while it never ends.
    ['a character device (/dev/zero)', () => '/dev/zero', 'HCP_ERR_INPUT_UNREADABLE'],
    // A regular file whose size reads 0 though it has content (procfs, some FUSE file systems): it passed as an empty
    // file, zero rows and exit 0, its content never read.
    ...(existsSync('/proc/self/status') ? ([['a file whose size reads 0 but is not empty (/proc/self/status)', () => '/proc/self/status', 'HCP_ERR_INPUT_UNREADABLE']] as [string, (dir: string) => string, string][]) : []),
    // A file whose read fails (EIO): the input's fault, not an internal error.
    ...(existsSync('/proc/self/mem') ? ([['a file whose read fails (/proc/self/mem)', () => '/proc/self/mem', 'HCP_ERR_INPUT_UNREADABLE']] as [string, (dir: string) => string, string][]) : []),
    ['PNG bytes', (dir) => (writeFileSync(join(dir, 'x.csv'), png), join(dir, 'x.csv')), 'HCP_ERR_NOT_CSV'],
    ['missing column', (dir) => (writeFileSync(join(dir, 'x.csv'), csv('hospital_id,value')), join(dir, 'x.csv')), 'HCP_ERR_BAD_HEADER'],
  ])('%s → %s', async (_name, make, code) => {
    const e = await expectErrorCode(() => preflight('vitals', make(tempDir('hcp-bad-'))), code);
    expect((e as unknown as { exitCode: number }).exitCode).toBe(2);
  });

  it('validate on a named pipe: exit 2 at once, not blocked in open() waiting for a writer', async () => {
    const dir = tempDir('hcp-bad-');
    const fifo = join(dir, 'pipe.csv');
    spawnSync('mkfifo', [fifo]);
    // Without the check open() blocks with no writer, and SIGTERM cannot end it: the timeout kills it.
    const r = await runCli(['validate', '--dataset', 'vitals', '--input', fifo], { timeoutMs: 10_000 });
    expectCleanError(r, 2, 'HCP_ERR_INPUT_UNREADABLE', /regular file/);
  });

  it('a readable file gives its header and size', () => {
    const dir = tempDir('hcp-bad-');
    writeFileSync(join(dir, 'x.csv'), csv(HEADER, ...GOOD));
    const { header, size } = preflight('vitals', join(dir, 'x.csv'));
    expect(header!.index).toEqual([0, 1, 2, 3, 4, 5]);
    expect(size).toBe(csv(HEADER, ...GOOD).length);
  });
});

// ------------------------------------------------------------------ usable files: exit 0, rows quarantined

describe('usable files with bad rows: exit 0, bad rows quarantined, ledger holds', () => {
  it.each([
    ['empty file', Buffer.alloc(0)],
    // An export of no rows that wrote only a line end: exit 2, "missing required columns", before.
    ['a lone LF', Buffer.from('\n')],
    ['BOM and CRLF', Buffer.from('\uFEFF\r\n')],
  ])('%s: zero rows and a warning', async (_name, content) => {
    const run = await processInput(content);
    await expectLedger(run, { read: 0, accepted: 0, rejected: 0 });
    expect(run.r.json!.warnings.join(' ')).toMatch(/empty/);
    expect(run.r.stderr).toMatch(/WARNING/);
  });

  it('header only: zero rows', async () => {
    const run = await processInput(csv(HEADER));
    await expectLedger(run, { read: 0, accepted: 0, rejected: 0 });
  });

  it('header only, no newline: zero rows', async () => {
    const run = await processInput(HEADER);
    await expectLedger(run, { read: 0, accepted: 0, rejected: 0 });
  });

  // SPEC §1: a header-only file is valid input "with zero rows (a warning in the report)".
  it('header only: the summary carries a warning', async () => {
    const run = await processInput(csv(HEADER));
    expect(run.r.code).toBe(0);
    expect(run.r.json!.warnings.length).toBeGreaterThan(0);
  });

  // SPEC §1 wants the empty-file / header-only warning "in the report", although such a file
  // has no hospital partition to carry it.
  it.each([
    ['empty file', ''],
    ['header-only file', csv(HEADER)],
  ])('%s: `run` puts a warning about it in the quality report', async (_name, content) => {
    const dir = tempDir('hcp-bad-');
    const input = join(dir, 'empty_vitals.csv');
    writeFileSync(input, content);
    const labs = join(dir, 'labs.csv');
    writeFileSync(labs, csv('hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit', 'H001,2024-01-05,P1,glucose,90,70-100,mg/dL'));
    const out = join(dir, 'out');
    const r = await runCli(['run', '--vitals', input, '--labs', labs, '--out', out, ...OPTS]);
    expect(r.code, describeRun(r)).toBe(0);
    const report = readFileSync(join(out, 'quality', 'report.json'), 'utf8');
    expect(report).toContain('empty_vitals.csv');
    // ...and the root ledger lists the file, with zero rows.
    const manifest = JSON.parse(readFileSync(join(out, '_manifest.json'), 'utf8'));
    expect(manifest.ledger.find((l: { input: string }) => l.input === input)).toMatchObject({ read: 0, accepted: 0, rejected: 0, holds: true });
  });

  it('reordered columns: the same curated values as the canonical order', async () => {
    const order = [5, 3, 0, 4, 2, 1];
    const reorder = (line: string) => {
      const f = line.split(',');
      return order.map((i) => f[i]).join(',');
    };
    const normal = await processInput(csv(HEADER, ...GOOD, 'H001,2024-01-05,P9,heart_rate,abc,bpm'));
    const shuffled = await processInput(csv(reorder(HEADER), ...GOOD.map(reorder), reorder('H001,2024-01-05,P9,heart_rate,abc,bpm')));
    await expectLedger(normal, { read: 4, accepted: 3, rejected: 1 });
    await expectLedger(shuffled, { read: 4, accepted: 3, rejected: 1 });
    const rows = (out: string) => query(`SELECT * EXCLUDE (filename) FROM ${curatedScan(out, 'vitals')} ORDER BY hospital_id, measurement_date, vital_type`);
    expect(await rows(shuffled.out)).toEqual(await rows(normal.out));
    const q = await rejects(shuffled.out);
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({ reason_codes: 'value.invalid', value: 'abc', patient_id: 'P9', line: 5 });
  });

  it('extra column: ignored, with a warning naming it', async () => {
    const run = await processInput(csv(`${HEADER},device_note`, ...GOOD.map((l) => `${l},monitor 3`)));
    await expectLedger(run, { read: 3, accepted: 3, rejected: 0 });
    expect(run.r.json!.warnings.join(' ')).toMatch(/device_note/);
    expect(run.r.stderr).toMatch(/WARNING.*device_note/);
    const cols = await query(`DESCRIBE SELECT * FROM ${curatedScan(run.out, 'vitals')}`);
    expect(cols.map((c) => c.column_name)).not.toContain('device_note');
  });

  // SPEC §1: extra columns are ignored "with a warning in the report", whether or not rows follow the header.
  it.each<[string, string[], RegExp[]]>([
    ['rows', GOOD.map((l) => `${l},monitor 3`), [/extra column\(s\) ignored: device_note/]],
    ['header only', [], [/header only/, /extra column\(s\) ignored: device_note/]],
  ])('extra column, %s: the summary warns about it', async (_name, rows, expected) => {
    const run = await processInput(csv(`${HEADER},device_note`, ...rows));
    expect(run.r.code, describeRun(run.r)).toBe(0);
    const warnings: string[] = run.r.json!.warnings;
    for (const w of expected) expect(warnings.some((x) => w.test(x)), `${w} in ${JSON.stringify(warnings)}`).toBe(true);
    expect(warnings).toHaveLength(expected.length);
  });

  // A header that runs on into the rows turns their fields into "extra column names", which the warnings quoted
  // into stderr, the JSON summaries, the manifests and the report: patient IDs outside quarantine (SPEC §3).
  it.each<[string, string]>([
    ['a quoted line break in an extra column name', csv(`${HEADER},"note`, 'H001,2024-01-05,MRN0012345,heart_rate,72,bpm"', 'H001,2024-01-06,MRN0099999,heart_rate,72,bpm,')],
    ['a quoted line break in an extra column name, CRLF', [`${HEADER},"note`, 'H001,2024-01-05,MRN0012345,heart_rate,72,bpm"', 'H001,2024-01-06,MRN0099999,heart_rate,72,bpm,'].join('\r\n') + '\r\n'],
    ['a data row glued onto the header line with a comma', csv(`${HEADER},H001,2024-01-05,MRN0012345,heart_rate,72,bpm`, 'H001,2024-01-06,MRN0099999,heart_rate,72,bpm,,,,,,')],
  ])('a header that swallowed rows (%s): their patient IDs reach no log, summary, manifest or report', async (_name, content) => {
    const run = await processInput(content);
    expect(run.r.code, describeRun(run.r)).toBe(0);
    // The summary still says extra columns were ignored, without naming them.
    expect(run.r.json!.warnings.join(' ')).toMatch(/extra column/);
    const validate = await runCli(['validate', '--dataset', 'vitals', '--input', run.input]);
    const stats = await runCli(['stats', '--out', run.out, '--no-progress']);
    const report = await runCli(['report', '--out', run.out, '--no-progress']);
    expect([validate.code, stats.code, report.code], describeRun(validate)).toEqual([0, 0, 0]);
    expect(validate.json!.extra_columns.length).toBeGreaterThan(0);
    const texts = [run.r, validate, stats, report].flatMap((r) => [r.stdout, r.stderr]);
    for (const f of listFiles(run.out).filter((f) => !f.startsWith('quarantine/'))) texts.push(f, readFileSync(join(run.out, f), 'latin1'));
    for (const t of texts) expect(t).not.toMatch(/MRN00/i);
  });

  it('CR-only line ends (with an extra column, once read as a header-only file: every row lost): exit 2, nothing written, no patient ID in the message', async () => {
    const content = [`${HEADER},note`, 'H001,2024-01-05,MRN0012345,heart_rate,72,bpm,x', 'H001,2024-01-06,MRN0099999,heart_rate,72,bpm,y'].join('\r') + '\r';
    const run = await processInput(content);
    expectCleanError(run.r, 2, 'HCP_ERR_BAD_HEADER', /CR alone/);
    expect(existsSync(run.out)).toBe(false);
    const validate = await runCli(['validate', '--dataset', 'vitals', '--input', run.input]);
    expect(validate.code, describeRun(validate)).toBe(2);
    for (const t of [run.r, validate].flatMap((r) => [r.stdout, r.stderr])) expect(t).not.toMatch(/MRN00/i);
  });

  it('BOM and CRLF line ends', async () => {
    const run = await processInput('\uFEFF' + [HEADER, ...GOOD].join('\r\n') + '\r\n');
    await expectLedger(run, { read: 3, accepted: 3, rejected: 0 });
    const units = await query(`SELECT DISTINCT source_unit FROM ${curatedScan(run.out, 'vitals')} ORDER BY 1`);
    expect(units.map((u) => u.source_unit)).toEqual(['F', 'bpm', 'lb']);
  });

  it('no newline at the end of the file: the last row counts', async () => {
    const run = await processInput([HEADER, ...GOOD].join('\n'));
    await expectLedger(run, { read: 3, accepted: 3, rejected: 0 });
  });

  it('blank lines are skipped and line numbers stay physical', async () => {
    const run = await processInput(csv(HEADER, GOOD[0], '', '', 'H001,2024-01-05,P9,heart_rate,abc,bpm', '   ', GOOD[1]));
    // A line of spaces is a record with the wrong number of fields, not a blank line.
    await expectLedger(run, { read: 4, accepted: 2, rejected: 2 });
    expect((await rejects(run.out)).map((x) => [x.line, x.reason_codes])).toEqual([
      [5, 'value.invalid'],
      [6, 'row.field_count'],
    ]);
  });

  it('unterminated quote on line 3: that row quarantined, later rows kept', async () => {
    const run = await processInput(csv(HEADER, GOOD[0], 'H001,2024-01-05,"P2,heart_rate,73,bpm', GOOD[1], 'H002,2024-02-08,P4,heart_rate,80,bpm', GOOD[2]));
    await expectLedger(run, { read: 5, accepted: 4, rejected: 1 });
    const q = await rejects(run.out);
    expect(q.map((x) => [x.line, x.reason_codes])).toEqual([[3, 'row.unterminated_quote']]);
    expect(q[0].raw_record).toContain('"P2,heart_rate,73,bpm');
  });

  it('an open quote closed by a later quoted field: the lines between are one record, as the parser reads them', async () => {
    // The quote opened on line 3 is closed by the opening quote of "P4" on line 5; the text after it (P4") is a bad quote.
    const run = await processInput(csv(HEADER, GOOD[0], 'H001,2024-01-05,"P2,heart_rate,73,bpm', GOOD[1], 'H002,2024-02-08,"P4",heart_rate,80,bpm', GOOD[2]));
    await expectLedger(run, { read: 3, accepted: 2, rejected: 1 });
    const q = await rejects(run.out);
    expect(q.map((x) => [x.line, x.reason_codes.split(';')[0]])).toEqual([[3, 'row.bad_quote']]);
    expect(q[0]).toMatchObject({ patient_id: `P2,heart_rate,73,bpm\n${GOOD[1]}\nH002,2024-02-08,P4"`, vital_type: 'heart_rate', value: '80' });
  });

  it('unterminated quote on the last line', async () => {
    const run = await processInput(csv(HEADER, ...GOOD, 'H001,2024-01-05,"P2,heart_rate,73,bpm'));
    await expectLedger(run, { read: 4, accepted: 3, rejected: 1 });
    expect((await rejects(run.out)).map((x) => [x.line, x.reason_codes])).toEqual([[5, 'row.unterminated_quote']]);
  });

  it('a quoted field with embedded newlines keeps the physical line numbers of later rows', async () => {
    const run = await processInput(csv(HEADER, 'H001,2024-01-05,P1,heart_rate,72,"bpm"', 'H001,2024-01-05,"P\n2",heart_rate,72,bpm', 'H001,2024-01-05,P3,heart_rate,abc,bpm'));
    await expectLedger(run, { read: 3, accepted: 1, rejected: 2 });
    expect((await rejects(run.out)).map((x) => [x.line, x.reason_codes])).toEqual([
      [3, 'patient_id.invalid'],
      [5, 'value.invalid'],
    ]);
  });

  it('short and long rows: row.field_count, raw record kept', async () => {
    const run = await processInput(csv(HEADER, GOOD[0], 'H001,2024-01-05,P2,heart_rate,72', 'H001,2024-01-05,P3,heart_rate,72,bpm,extra', 'H001', GOOD[1]));
    await expectLedger(run, { read: 5, accepted: 2, rejected: 3 });
    const q = await rejects(run.out);
    expect(q.map((x) => [x.line, x.reason_codes])).toEqual([
      [3, 'row.field_count'],
      [4, 'row.field_count'],
      [5, 'row.field_count'],
    ]);
    expect(q[0].raw_record).toBe('H001,2024-01-05,P2,heart_rate,72');
    expect(q[1].raw_record).toBe('H001,2024-01-05,P3,heart_rate,72,bpm,extra');
  });

  it('records with the wrong field count reach no path, summary or report under their hospital_id column (it may hold a patient ID)', async () => {
    const run = await processInput(csv(HEADER, GOOD[0], 'MRN0012345,heart_rate,72,bpm', '2024-01-05,MRN0099999,heart_rate,72,bpm', 'H002,2024-01-05,P2,heart_rate,72'));
    await expectLedger(run, { read: 4, accepted: 1, rejected: 3 });
    const q = await rejects(run.out);
    expect(q.map((x) => [x.line, x.partition, x.reason_codes])).toEqual([
      [3, '__invalid__', 'row.field_count'],
      [4, '__invalid__', 'row.field_count'],
      [5, '__invalid__', 'row.field_count'],
    ]);
    // Quarantine keeps the record as read (the restricted zone).
    expect(q[0].raw_record).toBe('MRN0012345,heart_rate,72,bpm');
    expect(run.r.json!.hospitals).toEqual(['H001', '__invalid__']);
    expect((run.r.json!.hospital_rows as { hospital_id: string }[]).map((h) => h.hospital_id)).toEqual(['H001', '__invalid__']);
    for (const f of listFiles(run.out)) expect(f).not.toMatch(/MRN|2024-01-05|H002/);
    expect(run.r.stdout + run.r.stderr).not.toMatch(/MRN/);
  });

  it('a bad quote: row.bad_quote', async () => {
    const run = await processInput(csv(HEADER, 'H001,2024-01-05,P1,heart_rate,"72" ,bpm', GOOD[0]));
    await expectLedger(run, { read: 2, accepted: 1, rejected: 1 });
    expect((await rejects(run.out)).map((x) => x.reason_codes)).toEqual(['row.bad_quote']);
  });

  it('a 16 MB line with the smallest --chunk-size: process and partition finish, as with the default chunk', async () => {
    // Reading 1 KiB more at a time, each read rescanned and copied the whole pending record: quadratic, hours for
    // this line, tens of GB of garbage, and no turn of the event loop for SIGTERM to be handled.
    const big = '7'.repeat(16_000_000);
    const dir = tempDir('hcp-bad-');
    const input = join(dir, 'input.csv');
    writeFileSync(input, csv(HEADER, GOOD[0], `H001,2024-01-05,P2,heart_rate,${big},bpm`, GOOD[1]));
    const r = await runCli(['process', '--dataset', 'vitals', '--input', input, '--out', join(dir, 'out'), ...OPTS, '--chunk-size', '1024'], { timeoutMs: 30_000 });
    await expectLedger({ dir, input, out: join(dir, 'out'), r }, { read: 3, accepted: 2, rejected: 1 });
    expect((await rejects(join(dir, 'out'))).map((x) => [x.line, x.reason_codes])).toEqual([[3, 'value.invalid']]);
    const p = await runCli(['partition', '--dataset', 'vitals', '--input', input, '--landing', join(dir, 'landing'), '--chunk-size', '1024'], { timeoutMs: 30_000 });
    expect(p.code, describeRun(p)).toBe(0);
    expect(readFileSync(join(dir, 'landing', 'vitals', 'hospital_id=H001.csv'), 'utf8')).toBe(readFileSync(input, 'utf8'));
  });

  it('a 5 MiB field (quoted, and unquoted): quarantined, nothing lost', async () => {
    const big = 'x'.repeat(5 * 1024 * 1024);
    const run = await processInput(csv(HEADER, GOOD[0], `H001,2024-01-05,P2,heart_rate,"${big}",bpm`, GOOD[1], `H001,2024-01-05,${big},heart_rate,72,bpm`, GOOD[2]));
    await expectLedger(run, { read: 5, accepted: 3, rejected: 2 });
    const q = await rejects(run.out);
    expect(q.map((x) => [x.line, x.reason_codes])).toEqual([
      [3, 'value.invalid'],
      [5, 'patient_id.invalid'],
    ]);
    expect(q[0].value).toBe(big);
  });

  it('NUL bytes in a field: quarantined', async () => {
    const run = await processInput(csv(HEADER, GOOD[0], 'H001,2024-01-05,P\u00002,heart_rate,72,bpm', 'H001,2024-01-05,P3,heart_rate,7\u00002,bpm', GOOD[1]));
    await expectLedger(run, { read: 4, accepted: 2, rejected: 2 });
    expect((await rejects(run.out)).map((x) => [x.line, x.reason_codes])).toEqual([
      [3, 'patient_id.invalid'],
      [4, 'value.invalid'],
    ]);
    // validate, the DAG's preflight of the same file, lets it through too: two NULs in a small file are not a binary file.
    const v = await runCli(['validate', '--dataset', 'vitals', '--input', run.input]);
    expect(v.code, describeRun(v)).toBe(0);
  });

  it.each([
    ['random bytes with NULs', random],
    // Fewer than 16 NULs, but over 1 % of bytes that are not UTF-8 either.
    ['a small compressed blob', gzipSync(Buffer.from(GOOD.join('\n').repeat(40)))],
  ])('validate: binary data after a valid header (%s) is exit 2 HCP_ERR_NOT_CSV', async (_, data) => {
    const dir = tempDir('hcp-bad-');
    const input = join(dir, 'x.csv');
    writeFileSync(input, Buffer.concat([Buffer.from(csv(HEADER)), data]));
    expectCleanError(await runCli(['validate', '--dataset', 'vitals', '--input', input]), 2, 'HCP_ERR_NOT_CSV', /binary/);
  });

  it('invalid UTF-8 in a row: row.invalid_utf8; UTF-8 rows around it are kept', async () => {
    const content = Buffer.concat([
      Buffer.from(csv(HEADER, 'H001,2024-01-05,P1,temperature,36.6,°C')),
      Buffer.from('H001,2024-01-05,P'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(',heart_rate,72,bpm\n'),
      Buffer.from(csv('H001,2024-01-06,P3,temperature,36.8,°C')),
    ]);
    const run = await processInput(content);
    await expectLedger(run, { read: 3, accepted: 2, rejected: 1 });
    expect((await rejects(run.out)).map((x) => [x.line, x.reason_codes])).toEqual([[3, 'row.invalid_utf8']]);
    const units = await query(`SELECT source_unit, value FROM ${curatedScan(run.out, 'vitals')} ORDER BY value`);
    expect(units).toEqual([
      { source_unit: '°C', value: 36.6 },
      { source_unit: '°C', value: 36.8 },
    ]);
  });

  it('path-like hospital IDs: quarantined under hospital_id=__invalid__, no directory outside out/', async () => {
    // An absolute path of this run's own (checked below), not a shared one such as /tmp/x that anything else may create.
    const absolute = join(tmpdir(), `hcp-path-like-${process.pid}-${Date.now()}`);
    const evil = ['../../etc', 'a/b', '..', absolute, 'H001/../../y', '.hidden', 'C:\\win'];
    const run = await processInput(csv(HEADER, GOOD[0], ...evil.map((h) => `${h},2024-01-05,P1,heart_rate,72,bpm`)));
    await expectLedger(run, { read: 1 + evil.length, accepted: 1, rejected: evil.length });
    const q = await rejects(run.out);
    expect(q.map((x) => x.partition)).toEqual(evil.map(() => '__invalid__'));
    expect(q.map((x) => x.hospital_id)).toEqual(evil);
    expect(q.every((x) => x.reason_codes === 'hospital_id.invalid')).toBe(true);
    // Everything written stays under out/, in well-named partitions.
    expect(listFiles(run.dir).filter((f) => !f.startsWith('out/'))).toEqual(['input.csv']);
    for (const f of listFiles(run.out)) {
      expect(f).not.toMatch(/\.\.|\\/);
      for (const part of f.split('/')) if (part.startsWith('hospital_id=')) expect(part).toMatch(/^hospital_id=(H001|__invalid__)(\.json)?$/);
    }
    expect(existsSync(join(run.dir, 'etc')) || existsSync(join(run.dir, 'y')) || existsSync(absolute)).toBe(false);
  });
});

describe('reserved names', () => {
  // `ALL` (the rollup) and `__invalid__` (the invalid-ID partition) are reserved names.
  it('hospital IDs named ALL or __invalid__ cannot collide with the rollup or the invalid partition', async () => {
    const run = await processInput(csv(HEADER, '__invalid__,2024-01-05,P1,heart_rate,72,bpm', 'ALL,2024-01-05,P2,heart_rate,80,bpm', '../x,2024-01-05,P3,heart_rate,72,bpm', 'H001,2024-01-05,P4,heart_rate,75,bpm'));
    expect(run.r.code, describeRun(run.r)).toBe(0);
    await expectLedger(run, { read: 4, accepted: 1, rejected: 3 });
    const q = await rejects(run.out);
    expect(q.map((r) => r.reason_codes)).toEqual(['hospital_id.invalid', 'hospital_id.invalid', 'hospital_id.invalid']);
    const st = await runCli(['stats', '--out', run.out]);
    expect(st.code, describeRun(st)).toBe(0);
    const stats = await query(`SELECT hospital_id, month, measure, count(*) AS k FROM read_csv('${join(run.out, 'stats', 'monthly_vitals.csv')}', all_varchar = true) GROUP BY ALL HAVING count(*) > 1`);
    expect(stats).toEqual([]);
    expect(isDir(join(run.out, 'curated', 'vitals', 'hospital_id=__invalid__'))).toBe(false);
  });
});

// ------------------------------------------------------------------ locks

describe('partition lock', () => {
  const lockName = (dataset: string, scope: string, input: string) => {
    const m = /^hospital_id=([A-Za-z0-9_-]{1,32})\.csv$/.exec(input.split('/').pop()!);
    return `${dataset}.${scope}.${m ? m[1] : createHash('sha256').update(realpathSync(input)).digest('hex').slice(0, 16)}.lock`;
  };

  const withLock = (name: string, pid: number, scope = 'all') => (dir: string) => {
    const input = join(dir, name);
    writeFileSync(input, csv(HEADER, GOOD[0]));
    mkdirSync(join(dir, 'out', '_locks'), { recursive: true });
    writeFileSync(join(dir, 'out', '_locks', lockName('vitals', scope, input)), String(pid));
    return input;
  };

  it.each(['hospital_id=H001.csv', 'some_export.csv'])('a second process on the same partition (%s) while one holds the lock exits 2', async (name) => {
    const run = await processInput(withLock(name, process.pid));
    expectCleanError(run.r, 2, 'HCP_ERR_LOCKED', new RegExp(`pid ${process.pid}`));
    // The holder's lock is left alone and nothing is written.
    const locks = listFiles(join(run.out, '_locks'));
    expect(locks).toEqual([lockName('vitals', 'all', run.input)]);
    expect(readFileSync(join(run.out, '_locks', locks[0]), 'utf8')).toBe(String(process.pid));
    expect(isDir(join(run.out, 'curated'))).toBe(false);
  });

  it('a lock left by a process that no longer exists is taken over', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(dead.stdout);
    expect(pid).toBeGreaterThan(0);
    const run = await processInput(withLock('hospital_id=H001.csv', pid));
    await expectLedger(run, { read: 1, accepted: 1, rejected: 0 });
  });

  it('a lock on another --period of the same hospital does not block', async () => {
    const run = await processInput(withLock('hospital_id=H001.csv', process.pid, '2024-02'), ['--period', '2024-01']);
    // The other run's lock is still there.
    await expectLedger(run, { read: 1, accepted: 1, rejected: 0 }, ['vitals.2024-02.H001.lock']);
  });
});
