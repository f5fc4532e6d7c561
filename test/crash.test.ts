/**
 * Hard kills (SIGKILL: no handler runs, nothing is cleaned on the way out) and the rerun that follows: the rerun
 * succeeds, gives the same output, and nothing the killed run left behind survives it (SPEC §5).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, curatedScan, DATA, describeRun, listFiles, query, removeTempDirs, runCli, snapshot, tempDir, TEST_KEY } from './helpers.js';

afterAll(removeTempDirs);

const VITALS = join(DATA, 'vitals_2024.csv');

/** Manifests carry timestamps and run ids; everything else must be identical. */
const dataFiles = (snap: Record<string, string>) => Object.fromEntries(Object.entries(snap).filter(([k]) => !k.startsWith('_manifests')));

/** Runs the CLI and SIGKILLs it once `ready(stderr)` holds; resolves once it is gone (and reaped). */
async function killWhen(args: string[], ready: (stderr: string) => boolean): Promise<{ killed: boolean; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, HCP_PSEUDONYM_KEY: TEST_KEY }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let killed = false;
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    if (!killed && ready(stderr)) killed = child.kill('SIGKILL');
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_c, s) => resolve(s)));
  return { killed, signal };
}

describe('process killed with SIGKILL mid-file, then rerun', () => {
  it('the rerun exits 0 with the same output, and removes the killed run\'s staging directory and lock', async () => {
    const dir = tempDir();
    const gen = await runCli(['generate', '--out', dir, '--rows', '300000', '--seed', '9', '--hospitals', '3']);
    expect(gen.code, gen.stderr).toBe(0);
    const args = ['process', '--dataset', 'vitals', '--input', join(dir, 'vitals_2024.csv'), '--out', join(dir, 'out')];
    const out = join(dir, 'out');
    const first = await runCli([...args, '--no-progress']);
    expect(first.code, describeRun(first)).toBe(0);
    const before = dataFiles(snapshot(out));

    const k = await killWhen([...args, '--progress'], (s) => /\d+\.\d% /.test(s));
    expect(k.killed && k.signal === 'SIGKILL', 'the run finished before it could be killed').toBe(true);
    // What a hard kill leaves: its staging directory (partial Parquet, spill) and its lock; the output as it was.
    expect(readdirSync(join(out, '_staging')).length).toBe(1);
    const visible = Object.fromEntries(Object.entries(dataFiles(snapshot(out))).filter(([f]) => !/^_staging\/|^_locks\//.test(f)));
    expect(visible).toEqual(before);

    const rerun = await runCli([...args, '--no-progress']);
    expect(rerun.code, describeRun(rerun)).toBe(0);
    expect(dataFiles(snapshot(out))).toEqual(before);
    expect(listFiles(out).filter((f) => /^_staging\/|^_locks\/|\.tmp-|\.old-/.test(f))).toEqual([]);
    expect(existsSync(join(out, '_staging'))).toBe(false);
    expect(existsSync(join(out, '_locks'))).toBe(false);
  });
});

describe('process killed with SIGKILL in the middle of its commit, then rerun', () => {
  // HCP_FAULT_KILL=<point>: the engine SIGKILLs itself there (src/sinks/fsutil.ts).
  // atomic-write:hospital_id= : at the first hospital's sketch file (a process's first atomic write is its pending marker).
  it.each(['replace-aside', 'atomic-write:hospital_id='])('at %s: nothing the killed commit moved aside or half-wrote stays in the output; the rerun gives the same output', async (point) => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const args = ['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, '--no-progress'];
    const first = await runCli(args);
    expect(first.code, describeRun(first)).toBe(0);
    const before = dataFiles(snapshot(out));

    const killed = await runCli(args, { env: { HCP_FAULT_KILL: point } });
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    // Outside _staging and _locks (the killed run's own, which the rerun removes), no scratch name.
    const scratch = (f: string) => !/^_staging\/|^_locks\//.test(f) && /\.old-|\.tmp-/.test(f);
    expect(listFiles(out).filter(scratch)).toEqual([]);

    const rerun = await runCli(args);
    expect(rerun.code, describeRun(rerun)).toBe(0);
    expect(dataFiles(snapshot(out))).toEqual(before);
    expect(listFiles(out).filter((f) => /^_staging\/|^_locks\/|\.tmp-|\.old-/.test(f))).toEqual([]);
    // A reader globbing the curated tree sees each row once.
    const [{ n }] = await query(`SELECT count(*) AS n FROM ${curatedScan(out, 'vitals')}`);
    expect(n).toBe(rerun.json!.rows.accepted);
  });
});

describe('process killed between two hospitals of its commit', () => {
  it('report refuses (exit 2, no _SUCCESS) the mix of two versions of the file until the process is run again', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const input = join(dir, 'vitals.csv');
    const lines = readFileSync(VITALS, 'utf8').trimEnd().split('\n');
    writeFileSync(input, lines.join('\n') + '\n');
    const args = ['process', '--dataset', 'vitals', '--input', input, '--out', out, '--no-progress'];
    const first = await runCli(args);
    expect(first.code, describeRun(first)).toBe(0);
    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    const good = await runCli(['report', '--out', out]);
    expect(good.code, describeRun(good)).toBe(0);

    // A corrected delivery of the same file (its last 100 rows fewer), killed once its first hospital is committed.
    writeFileSync(input, lines.slice(0, -100).join('\n') + '\n');
    const killed = await runCli(args, { env: { HCP_FAULT_KILL: 'between-hospitals' } });
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    const mixed = await runCli(['report', '--out', out]);
    expect(mixed.code, describeRun(mixed)).toBe(2);
    expect(mixed.json!.error.code).toBe('HCP_ERR_INTERRUPTED_COMMIT');
    expect(existsSync(join(out, '_SUCCESS'))).toBe(false);

    const rerun = await runCli(args);
    expect(rerun.code, describeRun(rerun)).toBe(0);
    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    const again = await runCli(['report', '--out', out]);
    expect(again.code, describeRun(again)).toBe(0);
    expect(existsSync(join(out, '_SUCCESS'))).toBe(true);
    expect(again.json!.ledger).toEqual([expect.objectContaining({ read: lines.length - 101, holds: true })]);
  });
});

describe('process killed right after it releases its partition lock', () => {
  // Once the lock is released a rerun of the partition may start and write its own pending marker: the commit
  // (input manifest written, this run's marker removed) must be complete by then, or this run would remove the
  // rerun's marker, and a kill of the rerun mid-commit would go unnoticed.
  it('has finished its commit: input manifest written, no pending marker, report exits 0', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const args = ['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, '--no-progress'];
    const killed = await runCli(args, { env: { HCP_FAULT_KILL: 'unlocked' } });
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    expect(listFiles(join(out, '_manifests', 'vitals')).filter((f) => f.startsWith('inputs/'))).toHaveLength(1);
    expect(existsSync(join(out, '_manifests', 'vitals', 'pending'))).toBe(false);
    expect((await runCli(['stats', '--out', out])).code).toBe(0);
    const report = await runCli(['report', '--out', out]);
    expect(report.code, describeRun(report)).toBe(0);
  });
});

describe('process killed between moving a partition aside and renaming the new one in', () => {
  it('the next run of the partition puts the previous version back before it clears the killed run\'s staging', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const args = ['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, '--no-progress'];
    expect((await runCli(args)).code).toBe(0);
    const before = dataFiles(snapshot(out));
    const killed = await runCli(args, { env: { HCP_FAULT_KILL: 'replace-aside' } });
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    const gone = Object.keys(before).filter((f) => !(f in snapshot(out)));
    expect(gone.length).toBeGreaterThan(0); // the first hospital's curated files are aside, in staging
    // The next run is killed right after its sweep: what it restored is what the output keeps.
    const swept = await runCli(args, { env: { HCP_FAULT_KILL: 'swept' } });
    expect(swept.signal, describeRun(swept)).toBe('SIGKILL');
    expect(swept.stderr).toMatch(/restored .*hospital_id=/);
    // The killed runs' locks stay until a run takes them over; the data is the previous version, whole.
    expect(Object.fromEntries(Object.entries(dataFiles(snapshot(out))).filter(([f]) => !f.startsWith('_locks/')))).toEqual(before);
  });
});

describe('process killed while taking over a stale lock, then rerun', () => {
  // takeover: just after creating `<lock>.takeover-<dead pid>`; takeover-removed: just after removing the stale lock.
  it.each(['takeover', 'takeover-removed'])('at %s: the next run takes the lock, nothing removed by hand, and leaves no lock file', async (point) => {
    const out = join(tempDir(), 'out');
    const locks = join(out, '_locks');
    const lock = join(locks, `vitals.all.${createHash('sha256').update(realpathSync(VITALS)).digest('hex').slice(0, 16)}.lock`);
    const dead = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim(); // a process that has exited
    mkdirSync(locks, { recursive: true });
    writeFileSync(lock, dead); // left by a killed run
    const args = ['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, '--no-progress'];
    const killed = await runCli(args, { env: { HCP_FAULT_KILL: point } });
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
    expect(readdirSync(locks)).toContain(`${lock.split('/').pop()}.takeover-${dead}`);
    expect(existsSync(lock)).toBe(point === 'takeover');

    const rerun = await runCli(args);
    expect(rerun.code, describeRun(rerun)).toBe(0);
    expect(existsSync(locks), String(existsSync(locks) && readdirSync(locks))).toBe(false);
  });
});

describe('staging of other partitions', () => {
  it('is never swept, even when its lock names a pid that is not running here (a run on another host)', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    // Another partition's run, as this host sees it: its lock holds a pid with no process here.
    const other = join(out, '_staging', 'vitals.all.0123456789abcdef-00000000-0000-4000-8000-000000000000');
    mkdirSync(join(other, 'curated'), { recursive: true });
    writeFileSync(join(other, 'curated', 'part.parquet'), 'in use');
    mkdirSync(join(out, '_locks'), { recursive: true });
    writeFileSync(join(out, '_locks', 'vitals.all.0123456789abcdef.lock'), '999999999');
    const r = await runCli(['process', '--dataset', 'vitals', '--input', VITALS, '--out', out, '--no-progress']);
    expect(r.code, describeRun(r)).toBe(0);
    expect(readFileSync(join(other, 'curated', 'part.parquet'), 'utf8')).toBe('in use');
  });
});
