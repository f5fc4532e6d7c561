/**
 * Partition locks: a file holding the owner's pid and start time (`<pid> <start>`, the start from /proc; a file
 * holding only a pid, from an older engine or a system without /proc, is read as before), created whole (hard-linked
 * into place, which fails if it exists; O_EXCL where links are not supported). A second run for the same partition
 * refuses to start (exit 2); a lock left by a process that no longer exists is taken over. The start time tells a
 * reused pid from the owner: a lock whose pid now belongs to a process started at another time is stale.
 *
 * Taking over a stale lock (its pid X dead, a zombie, reused, or this process's own pid left by an earlier process)
 * is done only while holding `<lock>.takeover-X`, created whole the same way and holding the taker's pid: the taker
 * re-reads the lock and removes it only if it still holds X (and X is still stale), then removes the takeover file
 * and links its own lock, which may again fail if a fresh run linked first. Without it two runs that both read the
 * stale lock could both take it: A removes it and links its own, then B, still deciding on X, removes A's lock and
 * links its own, and both process the partition. A run that finds the takeover file held by a live process waits
 * for that takeover and starts again (bounded: HCP_ERR_LOCKED if it never ends).
 *
 * A takeover file outlives its taker only if the taker is killed in the microseconds between creating and removing
 * it. Such a file is stale in turn and is cleared the same way, one level up: `T.takeover-D` (D its dead taker)
 * is created, T removed if it still holds D, then `T.takeover-D` removed (`takeOver`, at most MAX_DEPTH levels). A
 * takeover file holding this process's own pid is an earlier process's (this one never leaves one): stale like any
 * other, and cleared the same way (adopted without a takeover file of its own, it could be cleared at the same time
 * by a run that read it as stale, and both would take the lock). A takeover file left once the stale lock was
 * removed is read by no one: the lock's next holder clears it (`clearLeftovers`).
 */
import { randomUUID } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PipelineError } from '../errors.js';
import { faultPoint } from './fsutil.js';

/** Who a lock or takeover file names: a pid and, when it was recorded, that process's start time. */
interface Owner {
  pid: number;
  start: string | null;
}

/** The owner a file's text names (`<pid>` or `<pid> <start>`), or null when it holds no pid. */
function parseOwner(text: string): Owner | null {
  const m = /^([1-9][0-9]*)(?: ([0-9]+))?$/.exec(text);
  return m ? { pid: Number(m[1]), start: m[2] ?? null } : null;
}

/**
 * A process's state letter and start time (/proc/<pid>/stat fields 3 and 22, in clock ticks since boot), or null
 * without /proc (macOS…) or once it is gone. The fields follow the command name in parentheses, which may hold ") ".
 */
function procStat(pid: number): { state: string; start: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], start: fields[19] };
  } catch {
    return null;
  }
}

/** What this process writes in its lock and takeover files. */
function ownText(): string {
  const start = procStat(process.pid)?.start;
  return start === undefined ? String(process.pid) : `${process.pid} ${start}`;
}

/**
 * Whether `owner` is a live process: its pid exists and is not a zombie (exited but not yet reaped, as a SIGKILLed
 * run stays until its parent waits for it), and, when its start time was recorded, started then (else the pid was
 * reused). Without /proc the pid's existence decides, as before.
 */
function alive({ pid, start }: Owner): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  return stat === null || (stat.state !== 'Z' && (start === null || stat.start === start));
}

/** A lock naming `owner` is stale when its owner is gone, or is this process's pid (left by an earlier process that had it). */
const stale = (owner: Owner) => owner.pid === process.pid || !alive(owner);

export interface Lock {
  release(): void;
}

export interface LockOptions {
  /**
   * Whether to wait (blocking the thread, up to ~1 s) for another process's takeover of a stale lock to end. With
   * false, HCP_ERR_LOCKED is thrown at once, with `context.retryable`: for a caller with its own asynchronous wait.
   * A file still empty (being written, where links are not supported) is waited for either way: it gets its pid in
   * microseconds, or never, a permanent refusal (`context.permanent`) after ~1 s (a writer stalled that long between
   * its open and its write, under SIGSTOP say, is refused as permanent too).
   */
  wait?: boolean;
}

/** How many times acquireLock starts again (the lock gone when read, a stale file removed, a takeover in progress). */
const ATTEMPTS = 100;
/** How long acquireLock waits, each time, for a takeover in progress (a few syscalls) or a file being written to end. */
const TAKEOVER_WAIT_MS = 10;
/** The most levels of takeover files left by killed takers (`<lock>.takeover-X`, `….takeover-X.takeover-D`…) that are cleared; a longer chain is refused. */
const MAX_DEPTH = 3;

/**
 * Takes the lock at `path` for `what` (named in messages). Throws HCP_ERR_LOCKED, `context.file` the lock, while
 * another run holds it or takes it over, and with `context.permanent` when no wait will help (a file holding no
 * pid, a chain of takeovers too deep): those need a person to look.
 */
export function acquireLock(path: string, what: string, { wait = true }: LockOptions = {}): Lock {
  // The lock appears with its pid already in it (written to a file of this process's, then linked into place):
  // created empty and then written, it could be read empty in between, as pid 0, a dead owner, and taken over.
  const mine = `${path}.${process.pid}-${randomUUID()}`;
  const own = ownText();
  writeScratch(mine, own);
  let busy: Busy | null = null; // what the last attempt waited for
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      busy = null;
      if (createWhole(mine, path)) {
        clearLeftovers(mine, path, what);
        let held = true;
        return {
          release() {
            if (!held) return;
            held = false;
            // Removed only while it still holds this run: a run that judged it stale (from another pid namespace,
            // where this pid looks dead) and took it over keeps its own.
            if (readText(path) === own) rmSync(path, { force: true });
          },
        };
      }
      const text = readText(path);
      if (text === null) continue; // released, or taken over, since the link failed: try again
      const owner = parseOwner(text);
      if (owner === null) {
        // A lock without a pid (written by something else, or caught between O_EXCL and its write) counts as held.
        if (text !== '') throw noPid(path, what);
        busy = { file: path, taker: null };
      } else if (!stale(owner)) {
        throw new PipelineError('HCP_ERR_LOCKED', `Another run (pid ${owner.pid}) is processing ${what}; refusing to start`, { file: path });
      } else {
        busy = takeOver(mine, [path], text, what);
      }
      if (busy?.taker && !wait) throw takeoverBusy(path, what, busy, { retryable: true });
      if (busy) sleep(TAKEOVER_WAIT_MS);
    }
  } finally {
    rmSync(mine, { force: true });
  }
  if (busy?.file === path) throw noPid(path, what);
  if (busy) throw takeoverBusy(path, what, busy, busy.taker ? {} : { permanent: true });
  throw new PipelineError('HCP_ERR_LOCKED', `Could not take the lock for ${what}`, { file: path });
}

/**
 * Writes this process's scratch file in the lock's directory, creating it. Another run that ends removes the
 * directory once it is empty (`removeIfEmpty`), which can fall between the mkdir and the write: then it is made
 * again. Once the scratch file is in it, the directory is not empty and stays.
 */
function writeScratch(mine: string, own: string): void {
  for (let attempt = 0; ; attempt++) {
    mkdirSync(dirname(mine), { recursive: true });
    try {
      writeFileSync(mine, own);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw e;
    }
  }
}

/** A file being written (taker null: empty so far) or another process's takeover in progress: wait, then start again. */
interface Busy {
  file: string;
  taker: Owner | null;
}

const noPid = (path: string, what: string) =>
  new PipelineError('HCP_ERR_LOCKED', `The lock for ${what} holds no pid; remove ${path} if no run is processing it`, { file: path, permanent: true });

function takeoverBusy(path: string, what: string, { file, taker }: Busy, flags: { retryable?: true; permanent?: true }): PipelineError {
  const message = taker
    ? `The stale lock for ${what} is being taken over by another run (pid ${taker.pid}, ${file}), which has not finished; refusing to start. ` +
      // A pid reused by an unrelated process looks like a live taker when the file has no start time (or no /proc).
      `A takeover takes microseconds: remove ${file} if pid ${taker.pid} is not a run of this pipeline`
    : `The stale lock for ${what} is being taken over by another run (${file} holds no pid yet; remove it if no run is processing ${what}), which has not finished; refusing to start`;
  return new PipelineError('HCP_ERR_LOCKED', message, { file: path, ...flags });
}

/**
 * Removes the last file of `chain` (the lock, then the takeover files in the way, each named after its
 * predecessor), read holding `text` whose owner is stale, while holding `<file>.takeover-<pid>`, and only if it
 * still holds `text`: a run that read the same stale file and took it over meanwhile has replaced it with its own,
 * which stays. A takeover file in the way whose taker is stale too (killed mid-takeover) is cleared first, the
 * same way one level up (one holding this process's own pid too: an earlier process's).
 * Returns null when the caller should start again at once, what is in progress when it should wait first.
 */
function takeOver(mine: string, chain: string[], text: string, what: string): Busy | null {
  const file = chain[chain.length - 1];
  const owner = parseOwner(text)!; // stale, as the caller found
  const takeover = `${file}.takeover-${owner.pid}`;
  if (!createWhole(mine, takeover)) {
    const held = readText(takeover);
    if (held === null) return null; // that takeover has ended: start again
    const taker = parseOwner(held);
    if (taker === null) return { file: takeover, taker: null }; // being written (O_EXCL), or not a takeover file
    if (!stale(taker)) return { file: takeover, taker }; // in progress
    // Its taker was killed mid-takeover (or it holds this process's own pid: an earlier process's): it is cleared
    // first, one level up, under a takeover file of its own, as another run may be clearing it too.
    if (chain.length > MAX_DEPTH) throw tooDeep(chain[0], what, [...chain.slice(1), takeover]);
    return takeOver(mine, [...chain, takeover], held, what);
  }
  // HCP_FAULT_KILL=takeover / takeover-removed: the crash tests kill a taker here (src/sinks/fsutil.ts).
  faultPoint('takeover', takeover);
  try {
    // Only the holder of this takeover file removes the file it is named after: if that still holds `text`, it is the stale one.
    if (readText(file) === text && stale(owner)) {
      rmSync(file, { force: true });
      faultPoint('takeover-removed', takeover);
    }
  } finally {
    rmSync(takeover, { force: true });
  }
  return null;
}

function tooDeep(path: string, what: string, takeovers: string[]): PipelineError {
  return new PipelineError(
    'HCP_ERR_LOCKED',
    `The stale lock for ${what} cannot be taken over: ${takeovers.join(', ')} were left by takeovers whose runs are gone; remove them and ${path} if no run is processing it`,
    { file: path, permanent: true },
  );
}

/**
 * Clears, once this process holds the lock at `path`, what killed runs left beside it that no run would read again:
 * takeover files whose taker is stale (a taker killed after removing the stale lock leaves its takeover file),
 * cleared the same way as above, deepest first, and scratch files of processes that are gone. Best effort: a
 * leftover is garbage, not a reason to fail the run.
 */
function clearLeftovers(mine: string, path: string, what: string): void {
  const [dir, base] = [dirname(path), basename(path)];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(`${base}.`));
  } catch {
    return;
  }
  for (const name of names.sort((a, b) => b.length - a.length)) {
    const file = join(dir, name);
    const suffix = name.slice(base.length);
    try {
      const text = readText(file);
      const owner = text === null ? null : parseOwner(text);
      if (owner === null || file === mine || !stale(owner)) continue;
      if (/^\.[0-9]+-[0-9a-f-]{36}$/.test(suffix)) {
        rmSync(file, { force: true }); // another process's `mine`
        continue;
      }
      if (!/^(\.takeover-[0-9]+)+$/.test(suffix)) continue;
      // The files from the lock down to this one: `<lock>`, `<lock>.takeover-X`, …
      const chain = [path];
      for (const pid of suffix.split('.takeover-').slice(1)) chain.push(`${chain[chain.length - 1]}.takeover-${pid}`);
      takeOver(mine, chain, text!, what);
    } catch {
      /* best effort */
    }
  }
}

/** A file's text, trimmed; null when it does not exist. */
function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Blocks this thread for `ms` (acquireLock is synchronous). */
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Waits (up to `ms`) for a short-lived lock, for the few renames of a commit. It waits here, asynchronously, rather
 * than in acquireLock, which would block the thread; a refusal no wait will end (`context.permanent`) is thrown at once.
 */
export async function withLock<T>(path: string, what: string, fn: () => T, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const lock = acquireLock(path, what, { wait: false });
      try {
        return fn();
      } finally {
        lock.release();
      }
    } catch (e) {
      const error = e as PipelineError;
      if (error.code !== 'HCP_ERR_LOCKED' || error.context?.permanent || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Creates `path` with `mine`'s contents: a hard link, or (where the file system has none) O_EXCL and a write.
 * Returns false if `path` exists. A failed write removes the file it created: left empty, it would count as held.
 */
function createWhole(mine: string, path: string): boolean {
  try {
    linkSync(mine, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(code)) throw e;
  }
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    writeSync(fd, readFileSync(mine));
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw e;
  }
  closeSync(fd);
  return true;
}
