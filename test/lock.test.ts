import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { acquireLock, withLock } from '../src/sinks/lock.js';
import { CLI, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

/**
 * File system faults for lock.ts (which imports node:fs through this mock; this file's own helpers are unaffected):
 * `link` makes linkSync fail with that code (a file system without hard links: EPERM), `write` makes writeSync fail
 * (ENOSPC), as the O_EXCL fallback would see them; `rmdir` removes the (empty) directory of the next writeFileSync's
 * file just before it, as another run's `removeIfEmpty` of `_locks` can.
 */
const fsFaults = vi.hoisted(() => ({ link: null as string | null, write: null as string | null, rmdir: false }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const fail = (code: string) => Object.assign(new Error(`${code}: injected by the test`), { code });
  return {
    ...fs,
    linkSync(...args: Parameters<typeof fs.linkSync>) {
      if (fsFaults.link) throw fail(fsFaults.link);
      return fs.linkSync(...args);
    },
    writeSync(...args: unknown[]) {
      if (fsFaults.write) throw fail(fsFaults.write);
      return (fs.writeSync as (...a: unknown[]) => number)(...args);
    },
    writeFileSync(...args: Parameters<typeof fs.writeFileSync>) {
      if (fsFaults.rmdir && typeof args[0] === 'string') {
        fsFaults.rmdir = false;
        fs.rmdirSync(dirname(args[0]));
      }
      return fs.writeFileSync(...args);
    },
  };
});
afterEach(() => Object.assign(fsFaults, { link: null, write: null, rmdir: false }));

/** A process's start time (/proc/<pid>/stat field 22), as lock files record it after the pid. */
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
};

/** What a lock or takeover file of this process holds. */
const ME = `${process.pid} ${startOf(process.pid)}`;

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
    // `sh` execs into `sleep`, which never waits for the background child: killed once the exec is done (a child that
    // ended while `sh` still ran could be reaped by it), the child stays a zombie.
    const parent = spawn('sh', ['-c', 'sleep 30 & echo $!; exec sleep 31'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const tick = () => new Promise((r) => setTimeout(r, 10));
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (b: Buffer) => resolve(b.toString()))));
      const comm = () => readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim();
      for (let i = 0; i < 500 && comm() !== 'sleep'; i++) await tick();
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 500 && state(pid) !== 'Z'; i++) await tick();
      expect(state(pid)).toBe('Z');
      const path = join(tempDir(), 'vitals.all.H001.lock');
      writeFileSync(path, String(pid));
      const lock = acquireLock(path, 'the test partition');
      expect(readFileSync(path, 'utf8')).toBe(ME);
      lock.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('Lock.release', () => {
  // Another run took this one over (from another pid namespace, where this pid looks dead): its lock stays.
  it.each<[string, string | null, string | null]>([
    ['still this run\'s: removed', null, null],
    ['replaced by another run\'s: left as it is', '4194301 12345', '4194301 12345'],
    ['replaced by a pid-only lock: left as it is', String(process.pid + 1), String(process.pid + 1)],
    ['already removed: nothing to do', '', null],
  ])('%s', (_name, replaced, left) => {
    const path = join(tempDir(), 'vitals.all.H001.lock');
    const lock = acquireLock(path, 'the test partition');
    if (replaced === '') rmSync(path);
    else if (replaced !== null) writeFileSync(path, replaced);
    lock.release();
    expect(existsSync(path) ? readFileSync(path, 'utf8') : null).toBe(left);
    lock.release(); // twice: no effect
    expect(existsSync(path) ? readFileSync(path, 'utf8') : null).toBe(left);
  });
});

describe('acquireLock: the lock directory removed by another run', () => {
  // Another run that ends removes `_locks` once it is empty; that can fall between this run's mkdir and its scratch
  // file's write, which then failed with a raw ENOENT (the commit lock retries only HCP_ERR_LOCKED).
  it('between its mkdir and its scratch file: made again, and the lock taken', () => {
    const locks = join(tempDir(), '_locks');
    const path = join(locks, 'vitals.all.H001.lock');
    fsFaults.rmdir = true;
    const lock = acquireLock(path, 'the test partition');
    expect(fsFaults.rmdir).toBe(false); // the directory was removed under it
    expect(readFileSync(path, 'utf8')).toBe(ME);
    lock.release();
    expect(readdirSync(locks)).toEqual([]);
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
    takesAndLeavesNothing(dir, path);
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

/** Takes the lock at `path` (in `dir`): it holds this process, nothing else is left beside it, and released, nothing at all. */
function takesAndLeavesNothing(dir: string, path: string): void {
  const lock = acquireLock(path, 'the test partition');
  expect(readFileSync(path, 'utf8')).toBe(ME);
  expect(readdirSync(dir)).toEqual([basename(path)]);
  lock.release();
  expect(readdirSync(dir)).toEqual([]);
}

/** A process that lives until killed (`sh -c script`, which may exec into something else). */
const live = (script = 'exec sleep 30', ...args: string[]) => spawn('sh', ['-c', script, 'sh', ...args], { stdio: 'ignore' });

/** A lock left stale (holding a dead pid) in a directory of its own, and the name its takeover file would have. */
function staleLock(name = 'vitals.all.H001.lock') {
  const dir = tempDir();
  const path = join(dir, name);
  const stalePid = deadPid();
  writeFileSync(path, String(stalePid));
  return { dir, path, stalePid, takeover: `${path}.takeover-${stalePid}` };
}

/**
 * A stale lock whose takeover a live process holds: `sh -c script` (given the lock's and the takeover file's
 * paths), its pid written in the takeover file.
 */
function takeoverInProgress(name: string, script = 'exec sleep 30') {
  const stale = staleLock(name);
  const taker = live(script, stale.path, stale.takeover);
  writeFileSync(stale.takeover, String(taker.pid));
  return { ...stale, taker };
}

describe('acquireLock: taking over a stale lock', () => {
  it('a lock of a dead process is taken over, leaving no takeover or scratch file; released, nothing is left', () => {
    const { dir, path } = staleLock();
    takesAndLeavesNothing(dir, path);
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
    const { dir, path } = staleLock('vitals.commit.H001.lock');
    expect(await withLock(path, 'the test commit', () => readFileSync(path, 'utf8'))).toBe(ME);
    expect(readdirSync(dir)).toEqual([]);
  });

  // A takeover file outlives its taker only if the taker was killed mid-takeover: it is cleared (one level up, under
  // `<takeover>.takeover-<taker>`) and the stale lock taken over, nothing left behind. One holding this process's
  // own pid (an earlier process's) is cleared the same way.
  it.each([
    ['a dead process', () => String(deadPid())],
    ["this process's own pid", () => String(process.pid)],
    ["this process's own pid and start time", () => ME],
  ])('a takeover file left by %s is cleared and the stale lock taken over, leaving nothing', (_, taker) => {
    const { dir, path, takeover } = staleLock();
    writeFileSync(takeover, taker());
    takesAndLeavesNothing(dir, path);
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
        `The stale lock for the test partition is being taken over by another run (pid ${pid}, ${takeover}), which has not finished; refusing to start. ` +
        `A takeover takes microseconds: remove ${takeover} if pid ${pid} is not a run of this pipeline`,
    },
  ])('a takeover in progress by a live process that ends $ends', ({ script, stuck, refused }) => {
    const { dir, path, stalePid, takeover, taker } = takeoverInProgress('vitals.all.H001.lock', script);
    try {
      if (refused === null) {
        takesAndLeavesNothing(dir, path);
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
    const { dir, path, stalePid, takeover } = staleLock();
    writeFileSync(takeover, '');
    expect(() => acquireLock(path, 'the test partition')).toThrow(
      `The stale lock for the test partition is being taken over by another run (${takeover} holds no pid yet; remove it if no run is processing the test partition), which has not finished; refusing to start`,
    );
    expect(readdirSync(dir).sort()).toEqual(['vitals.all.H001.lock', `vitals.all.H001.lock.takeover-${stalePid}`]);
  });
});

/**
 * A lock left by a dead pid and, for each of `takers` takers killed mid-takeover, the takeover file it left (each
 * named after the one before, holding another dead pid): `files`, from the lock down.
 */
function takeoverChain(takers: number, name = 'vitals.all.H001.lock') {
  const dir = tempDir();
  const path = join(dir, name);
  const files = [path];
  let held = String(deadPid());
  writeFileSync(path, held);
  for (let i = 0; i < takers; i++) {
    files.push(`${files[files.length - 1]}.takeover-${held}`);
    held = String(deadPid());
    writeFileSync(files[files.length - 1], held);
  }
  return { dir, path, files };
}

describe("acquireLock: a takeover file holding this process's own pid", () => {
  // Another run reads it as stale too (its start time is an earlier process's) and may be clearing it: this one
  // clears it only under `<takeover>.takeover-<pid>` like any stale takeover file. Were it adopted without one,
  // both could remove the stale lock and take it.
  it('is not adopted while another run holds the takeover file above it: this run waits, then is refused', () => {
    const { path, stalePid, takeover } = staleLock();
    writeFileSync(takeover, String(process.pid));
    const other = live();
    try {
      writeFileSync(`${takeover}.takeover-${process.pid}`, String(other.pid));
      expect(() => acquireLock(path, 'the test partition')).toThrow(/is being taken over by another run/);
      expect(readFileSync(path, 'utf8')).toBe(String(stalePid));
      expect(readFileSync(takeover, 'utf8')).toBe(String(process.pid));
    } finally {
      other.kill('SIGKILL');
    }
  });
});

describe('acquireLock: chains of takeover files left by killed takers', () => {

  it.each([1, 2, 3])('%i deep: cleared level by level, the lock taken over, nothing left behind', (takers) => {
    const { dir, path } = takeoverChain(takers);
    takesAndLeavesNothing(dir, path);
  });

  it('4 deep (past the cap of 3 levels): HCP_ERR_LOCKED at once, permanent, naming every file, which stay', () => {
    const { dir, path, files } = takeoverChain(4);
    const before = files.map((f) => readFileSync(f, 'utf8'));
    const started = Date.now();
    const error = refusal(path);
    expect(Date.now() - started).toBeLessThan(500);
    expect(error).toMatchObject({ context: { permanent: true } });
    expect((error as Error).message).toBe(
      `The stale lock for the test partition cannot be taken over: ${files.slice(1).join(', ')} were left by takeovers whose runs are gone; remove them and ${path} if no run is processing it`,
    );
    expect(readdirSync(dir).length).toBe(files.length);
    expect(files.map((f) => readFileSync(f, 'utf8'))).toEqual(before);
  });

  it("a takeover file left behind once the stale lock was removed (its taker killed just then) is cleared by the lock's next holder", () => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    const stalePid = deadPid();
    writeFileSync(`${path}.takeover-${stalePid}`, String(deadPid()));
    writeFileSync(`${path}.${deadPid()}-00000000-0000-4000-8000-000000000000`, String(deadPid())); // its scratch file
    const lock = acquireLock(path, 'the test partition');
    expect(readdirSync(dir)).toEqual(['vitals.all.H001.lock']);
    lock.release();
  });
});

describe.runIf(process.platform === 'linux')('acquireLock: a pid with its start time', () => {
  it('a lock naming a live process that started then is held; one naming its pid with another start time (reused) is taken over', () => {
    const other = live();
    try {
      const path = join(tempDir(), 'vitals.all.H001.lock');
      const start = startOf(other.pid!);
      writeFileSync(path, `${other.pid} ${start}`);
      expect((refusal(path) as Error).message).toBe(`Another run (pid ${other.pid}) is processing the test partition; refusing to start`);
      writeFileSync(path, `${other.pid} ${Number(start) - 1}`);
      acquireLock(path, 'the test partition').release();
      expect(readdirSync(dirname(path))).toEqual([]);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('a takeover file naming a pid now reused by a live process (another start time) is cleared, not waited for', () => {
    const other = live();
    try {
      const { dir, path, takeover } = staleLock();
      writeFileSync(takeover, `${other.pid} ${Number(startOf(other.pid!)) - 1}`);
      const started = Date.now();
      acquireLock(path, 'the test partition').release();
      expect(Date.now() - started).toBeLessThan(500);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      other.kill('SIGKILL');
    }
  });
});

describe('acquireLock: an empty lock (another run between its O_EXCL create and its write)', () => {
  it('is waited for: once it holds the pid of a live run, that run holds it', () => {
    const path = join(tempDir(), 'vitals.all.H001.lock');
    writeFileSync(path, '');
    const writer = live('sleep 0.05; printf %s $$ > "$1"; exec sleep 30', path);
    try {
      expect((refusal(path) as Error).message).toBe(`Another run (pid ${writer.pid}) is processing the test partition; refusing to start`);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('is refused as holding no pid if it stays empty (permanent: no retry helps)', () => {
    const path = join(tempDir(), 'vitals.all.H001.lock');
    writeFileSync(path, '');
    expect(refusal(path)).toMatchObject({ message: expect.stringMatching(/holds no pid/), context: { permanent: true } });
  });
});

describe('acquireLock where hard links are not supported (O_EXCL and a write)', () => {
  it('takes a lock, and a stale one over, leaving nothing', () => {
    fsFaults.link = 'EPERM';
    const { dir, path } = staleLock();
    takesAndLeavesNothing(dir, path);
  });

  it.each([
    ['the lock', false],
    ['a takeover file', true],
  ])('a failed write (ENOSPC) leaves no empty file behind: %s', (_, stale) => {
    const dir = tempDir();
    const path = join(dir, 'vitals.all.H001.lock');
    if (stale) writeFileSync(path, String(deadPid()));
    Object.assign(fsFaults, { link: 'EPERM', write: 'ENOSPC' });
    expect(() => acquireLock(path, 'the test partition')).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(readdirSync(dir)).toEqual(stale ? ['vitals.all.H001.lock'] : []);
  });
});

describe('withLock waits asynchronously', () => {
  /** Runs `fn`, counting the ticks of a 10 ms interval meanwhile: few if it blocked the event loop. */
  async function ticking<T>(fn: () => Promise<T>): Promise<{ result: PromiseSettledResult<T>; ticks: number; ms: number }> {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = Date.now();
    try {
      const [result] = await Promise.allSettled([fn()]);
      return { result, ticks, ms: Date.now() - started };
    } finally {
      clearInterval(timer);
    }
  }

  it.each([
    // The budget (withLock's ms) leaves a loaded machine's slow `sh` start-up room before the taker's 0.3 s end.
    { ends: 'never: refused when its time is up, HCP_ERR_LOCKED (retryable)', script: 'exec sleep 30', budget: 600 },
    { ends: 'after 0.3 s: it then takes the lock', script: 'sleep 0.3; rm -f "$1" "$2"; exec sleep 30', budget: 3000 },
  ])('for a takeover in progress that ends $ends, without blocking the event loop', async ({ script, budget }) => {
    const { dir, path, takeover, taker } = takeoverInProgress('vitals.commit.H001.lock', script);
    try {
      const { result, ticks, ms } = await ticking(() => withLock(path, 'the test commit', () => 'committed', budget));
      if (script.startsWith('exec')) {
        expect(result).toMatchObject({ status: 'rejected', reason: { code: 'HCP_ERR_LOCKED', context: { file: path, retryable: true } } });
      } else {
        expect(result).toEqual({ status: 'fulfilled', value: 'committed' });
        expect(readdirSync(dir)).toEqual([]);
      }
      expect(ms).toBeLessThan(budget + 400);
      expect(ticks).toBeGreaterThan(ms / 10 / 3); // the interval ran (a blocking wait of ~1 s per attempt starved it)
    } finally {
      taker.kill('SIGKILL');
    }
  });

  it.each([
    ['a lock holding no pid', () => {
      const path = join(tempDir(), 'vitals.commit.H001.lock');
      writeFileSync(path, 'abc');
      return path;
    }],
    ['a chain of takeover files too deep', () => takeoverChain(4, 'vitals.commit.H001.lock').path],
  ])('is refused at once, not retried for a minute: %s', async (_, setUp) => {
    const path = setUp();
    const { result, ms } = await ticking(() => withLock(path, 'the test commit', () => 'committed'));
    expect(result).toMatchObject({ status: 'rejected', reason: { code: 'HCP_ERR_LOCKED', context: { file: path, permanent: true } } });
    expect(ms).toBeLessThan(1000);
  });

  it('acquireLock with wait: false throws at once for a takeover in progress, marked retryable', () => {
    const { path, taker } = takeoverInProgress('vitals.commit.H001.lock');
    try {
      const started = Date.now();
      expect(() => acquireLock(path, 'the test commit', { wait: false })).toThrow(
        expect.objectContaining({ code: 'HCP_ERR_LOCKED', context: { file: path, retryable: true } }),
      );
      expect(Date.now() - started).toBeLessThan(500); // waiting would take ~1 s
    } finally {
      taker.kill('SIGKILL');
    }
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
