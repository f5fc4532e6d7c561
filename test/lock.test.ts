import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock, withLock } from '../src/sinks/lock.js';
import { CLI, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

/** The state letter of a process in /proc (R, S, Z…), or null when it is gone. */
const state = (pid: number) => {
  try {
    return /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))![1];
  } catch {
    return null;
  }
};

describe.runIf(process.platform === 'linux')('acquireLock: a lock whose owner is a zombie', () => {
  it('is stale: the owner is dead, only not yet reaped (a SIGKILLed run whose parent has not waited for it)', async () => {
    // `sh` execs into `sleep`, which never waits for the background child: once it exits, it stays a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (b: Buffer) => resolve(b.toString()))));
      for (let i = 0; i < 200 && state(pid) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(state(pid)).toBe('Z');
      const path = join(tempDir(), 'vitals.all.H001.lock');
      writeFileSync(path, String(pid));
      const lock = acquireLock(path, 'the test partition');
      expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
      lock.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('acquireLock: the lock file appears with its pid', () => {
  it('a lock without a pid (empty, or not a number) counts as held: it is never read as a dead owner and taken over', () => {
    for (const text of ['', '\n', 'abc', '0', '-5']) {
      const path = join(tempDir(), 'vitals.all.H001.lock');
      writeFileSync(path, text);
      expect(() => acquireLock(path, 'the test partition'), JSON.stringify(text)).toThrow(/holds no pid/);
      expect(readFileSync(path, 'utf8')).toBe(text);
    }
  });

  it('a new lock holds this process\'s pid, and its scratch file is gone', () => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    const lock = acquireLock(path, 'the test partition');
    expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
    expect(readdirSync(dir)).toEqual(['vitals.all.H001.lock']);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });
});

/** The pid of a process that has exited (and been reaped). */
const deadPid = () => Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout);

/** What acquireLock throws for the test partition's lock at `path`, checked to be HCP_ERR_LOCKED naming that file. */
function refusal(path: string): unknown {
  let error: unknown;
  try {
    acquireLock(path, 'the test partition');
  } catch (e) {
    error = e;
  }
  expect(error).toMatchObject({ code: 'HCP_ERR_LOCKED', context: { file: path } });
  return error;
}

/** A process that lives until killed (`sh -c script`, which may exec into something else). */
const live = (script = 'exec sleep 30', ...args: string[]) => spawn('sh', ['-c', script, 'sh', ...args], { stdio: 'ignore' });

describe('acquireLock: taking over a stale lock', () => {
  it('a lock of a dead process is taken over, leaving no takeover or scratch file; released, nothing is left', () => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    writeFileSync(path, String(deadPid()));
    const lock = acquireLock(path, 'the test partition');
    expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
    expect(readdirSync(dir)).toEqual(['vitals.all.H001.lock']);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("a lock holding this process's own pid (left by an earlier process that had it) is taken over, as before", () => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    writeFileSync(path, String(process.pid));
    const lock = acquireLock(path, 'the test partition');
    expect(readdirSync(dir)).toEqual(['vitals.all.H001.lock']);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the short commit lock (withLock) takes over a stale lock too, and leaves nothing', async () => {
    const dir = tempDir();
    const path = join(dir, 'vitals.commit.H001.lock');
    writeFileSync(path, String(deadPid()));
    expect(await withLock(path, 'the test commit', () => readFileSync(path, 'utf8'))).toBe(String(process.pid));
    expect(readdirSync(dir)).toEqual([]);
  });

  // A takeover file whose taker is gone (or holds this process's pid: an earlier process's, as this one never leaves
  // one) stays until removed by hand: refused at once, naming both files, and neither is touched.
  it.each([
    ['a dead process', deadPid],
    ["this process's own pid", () => process.pid],
  ])('a takeover file left by %s: HCP_ERR_LOCKED naming both files, which stay', (_, taker) => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    const stalePid = deadPid();
    const takeover = `${path}.takeover-${stalePid}`;
    const takerPid = taker();
    writeFileSync(path, String(stalePid));
    writeFileSync(takeover, String(takerPid));
    const error = refusal(path);
    expect((error as Error).message).toBe(
      `A takeover of the stale lock for the test partition was interrupted (pid ${takerPid} is gone); remove ${takeover} and ${path} if no run is processing it`,
    );
    expect(readdirSync(dir).sort()).toEqual(['vitals.all.H001.lock', `vitals.all.H001.lock.takeover-${stalePid}`]);
    expect(readFileSync(path, 'utf8')).toBe(String(stalePid));
    expect(readFileSync(takeover, 'utf8')).toBe(String(takerPid));
  });

  // A live process holding the takeover file is taking the lock over right now: wait for it, then start again.
  // `sh` stands for it: it holds the takeover file (its pid written there before acquireLock runs), and after 0.1 s
  // does what a taker ends with.
  it.each([
    {
      ends: 'with its own lock in place: refused, its lock stays',
      // Its lock replaces the stale one in one step (mv): were it removed first, acquireLock could link its own lock in
      // between (that is the next case).
      script: 'sleep 0.1; printf %s $$ > "$1.new" && mv "$1.new" "$1" && rm "$2"; exec sleep 30',
      stuck: false,
      refused: (pid: number) => `Another run (pid ${pid}) is processing the test partition; refusing to start`,
    },
    {
      ends: 'with the stale lock removed, its run since ended (or not yet linked): acquired',
      script: 'sleep 0.1; rm -f "$1" "$2"; exec sleep 30',
      stuck: false,
      refused: null,
    },
    {
      ends: 'never (stuck): refused after waiting, naming it; nothing is touched',
      script: 'exec sleep 30',
      stuck: true,
      refused: (pid: number, takeover: string) =>
        `The stale lock for the test partition is being taken over by another run (pid ${pid}, ${takeover}), which has not finished; refusing to start`,
    },
  ])('a takeover in progress by a live process that ends $ends', ({ script, stuck, refused }) => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    const stalePid = deadPid();
    const takeover = `${path}.takeover-${stalePid}`;
    writeFileSync(path, String(stalePid));
    const taker = live(script, path, takeover);
    try {
      writeFileSync(takeover, String(taker.pid));
      if (refused === null) {
        const lock = acquireLock(path, 'the test partition');
        expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
        expect(readdirSync(dir)).toEqual(['vitals.all.H001.lock']);
        lock.release();
        expect(readdirSync(dir)).toEqual([]);
        return;
      }
      const error = refusal(path);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toBe(refused(taker.pid!, takeover));
      if (stuck) {
        // Nothing touched: the stale lock and the taker's takeover file.
        expect(readFileSync(path, 'utf8')).toBe(String(stalePid));
        expect(readdirSync(dir).sort()).toEqual(['vitals.all.H001.lock', `vitals.all.H001.lock.takeover-${stalePid}`]);
      } else {
        // The taker's lock stays (its takeover file it removes just after putting the lock in place: wait for that).
        for (let i = 0; i < 100 && readdirSync(dir).length > 1; i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        expect(readFileSync(path, 'utf8')).toBe(String(taker.pid));
        expect(readdirSync(dir)).toEqual(['vitals.all.H001.lock']);
      }
    } finally {
      taker.kill('SIGKILL');
    }
  });

  it('a takeover file holding no pid (being written where links are not supported) is waited for, then refused, naming it', () => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    const stalePid = deadPid();
    const takeover = `${path}.takeover-${stalePid}`;
    writeFileSync(path, String(stalePid));
    writeFileSync(takeover, '');
    expect(() => acquireLock(path, 'the test partition')).toThrow(
      `The stale lock for the test partition is being taken over by another run (${takeover} holds no pid yet; remove it if no run is processing the test partition), which has not finished; refusing to start`,
    );
    expect(readdirSync(dir).sort()).toEqual(['vitals.all.H001.lock', `vitals.all.H001.lock.takeover-${stalePid}`]);
  });
});

/**
 * Each child takes the lock over and over for `ms`; holding it, it checks it is alone (an exclusively created
 * `inside` file) for about 1 ms, then "dies" holding it: it puts a lock holding a dead pid in place (renamed over its
 * own, as a SIGKILLed run would leave it), so every acquisition is a takeover of a stale lock, raced by the others.
 * Prints how often it held the lock, was refused (HCP_ERR_LOCKED), failed otherwise, and found someone else inside.
 * Runs the build (dist/).
 */
const CONTENDER = `
import { closeSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [lockJs, dir, dead, start, ms] = process.argv.slice(1);
const { acquireLock } = await import(lockJs);
const path = join(dir, 'vitals.all.H001.lock');
const inside = join(dir, 'inside');
let held = 0, refused = 0, failed = 0, together = 0, error;
while (Date.now() < Number(start));
while (Date.now() < Number(start) + Number(ms)) {
  let lock;
  try {
    lock = acquireLock(path, 'the test partition');
  } catch (e) {
    if (e.code === 'HCP_ERR_LOCKED') refused++;
    else (failed++, (error ??= e.message));
    continue;
  }
  held++;
  try {
    closeSync(openSync(inside, 'wx'));
  } catch {
    together++;
  }
  for (const t = Date.now(); Date.now() - t < 1; );
  rmSync(inside, { force: true });
  writeFileSync(join(dir, 'dying-' + process.pid), dead);
  renameSync(join(dir, 'dying-' + process.pid), path);
}
process.stdout.write(JSON.stringify({ held, refused, failed, together, error }));
`;

describe('acquireLock: runs racing to take over the same stale lock', () => {
  it('only one of them holds it at a time (no run removes the lock another has just taken over)', async () => {
    const dir = tempDir();
    const dead = deadPid();
    writeFileSync(join(dir, 'vitals.all.H001.lock'), String(dead));
    const lockJs = pathToFileURL(join(dirname(CLI), 'sinks', 'lock.js')).href;
    const start = Date.now() + 400; // all started (Node's start-up) before the first takes the lock
    const results = await Promise.all(
      Array.from({ length: 4 }, () => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', CONTENDER, lockJs, dir, String(dead), String(start), '1200'], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        return new Promise<{ held: number; refused: number; failed: number; together: number }>((resolve) =>
          child.on('close', (code) => resolve(code === 0 ? JSON.parse(out) : { held: 0, refused: 0, failed: 1, together: 0, error: `exit ${code}` })),
        );
      }),
    );
    const sum = (k: 'held' | 'refused' | 'failed' | 'together') => results.reduce((n, r) => n + r[k], 0);
    expect(sum('held')).toBeGreaterThan(20); // they did race: many takeovers, many refusals
    expect(sum('refused')).toBeGreaterThan(20);
    expect(sum('together'), JSON.stringify(results)).toBe(0);
    expect(sum('failed'), JSON.stringify(results)).toBe(0); // e.g. ENOENT: the lock read after it was removed
    // Left as the last one "died": the stale lock only, no takeover or scratch file.
    expect(readdirSync(dir)).toEqual(['vitals.all.H001.lock']);
    expect(readFileSync(join(dir, 'vitals.all.H001.lock'), 'utf8')).toBe(String(dead));
  });
});
