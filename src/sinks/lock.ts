/**
 * Partition locks: a file holding the owner's pid, created whole (hard-linked
 * into place, which fails if it exists; O_EXCL where links are not supported). A second run for the same partition
 * refuses to start (exit 2); a lock left by a process that no longer exists
 * is taken over.
 *
 * Taking over a stale lock (its pid X dead, a zombie, or this process's own pid left by an earlier process) is done
 * only while holding `<lock>.takeover-X`, created whole the same way and holding the taker's pid: the taker re-reads
 * the lock and removes it only if it still holds X (and X is still not a live other process), then removes the
 * takeover file and links its own lock, which may again fail if a fresh run linked first. Without it two runs that
 * both read the stale lock could both take it: A removes it and links its own, then B, still deciding on X, removes
 * A's lock and links its own, and both process the partition. A run that finds the takeover file held by a live
 * process waits for that takeover and starts again (bounded: HCP_ERR_LOCKED if it never ends); a takeover file
 * whose own pid is gone (its taker died mid-takeover) is left alone, HCP_ERR_LOCKED naming both files to remove.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { PipelineError } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !zombie(pid);
}

/**
 * Whether a process has exited but not been reaped (Linux: state Z in /proc): kill(pid, 0) still succeeds, yet it
 * holds nothing. A SIGKILLed run stays one until its parent (or init, once orphaned) waits for it, and its lock
 * would turn the rerun away meanwhile.
 */
function zombie(pid: number): boolean {
  try {
    // The state follows the command name in parentheses, which may itself hold ") ".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false; // no /proc (macOS…): as before, the pid counts as alive
  }
}

export interface Lock {
  release(): void;
}

/** How many times acquireLock starts again (the lock gone when read, a stale one removed, a takeover in progress). */
const ATTEMPTS = 100;
/** How long acquireLock waits, each time, for another process's takeover of a stale lock (a few syscalls) to end. */
const TAKEOVER_WAIT_MS = 10;

export function acquireLock(path: string, what: string): Lock {
  mkdirSync(dirname(path), { recursive: true });
  // The lock appears with its pid already in it (written to a file of this process's, then linked into place):
  // created empty and then written, it could be read empty in between, as pid 0, a dead owner, and taken over.
  const mine = `${path}.${process.pid}-${randomUUID()}`;
  writeFileSync(mine, String(process.pid));
  let busy: Takeover | null = null; // the takeover the last attempt waited for
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      busy = null;
      try {
        createWhole(mine, path);
        let held = true;
        return {
          release() {
            if (held) rmSync(path, { force: true });
            held = false;
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const text = readText(path);
      if (text === null) continue; // released, or taken over, since the link failed: try again
      const pid = Number(text);
      // A lock without a pid (written by something else, or by an older engine caught half-way) counts as held.
      if (!/^[1-9][0-9]*$/.test(text)) throw new PipelineError('HCP_ERR_LOCKED', `The lock for ${what} holds no pid; remove ${path} if no run is processing it`, { file: path });
      if (!stale(pid)) {
        throw new PipelineError('HCP_ERR_LOCKED', `Another run (pid ${pid}) is processing ${what}; refusing to start`, { file: path });
      }
      busy = takeOver(mine, path, pid, what);
      if (busy) sleep(TAKEOVER_WAIT_MS);
    }
  } finally {
    rmSync(mine, { force: true });
  }
  if (busy) {
    const who = busy.pid === null ? `another run (${busy.file} holds no pid yet; remove it if no run is processing ${what})` : `another run (pid ${busy.pid}, ${busy.file})`;
    throw new PipelineError('HCP_ERR_LOCKED', `The stale lock for ${what} is being taken over by ${who}, which has not finished; refusing to start`, { file: path });
  }
  throw new PipelineError('HCP_ERR_LOCKED', `Could not take the lock for ${what}`, { file: path });
}

/** A lock holding `pid` is stale when its owner is gone, or is this process's pid (left by an earlier process that had it). */
const stale = (pid: number) => pid === process.pid || !alive(pid);

/** Another process's takeover of a stale lock, in progress. */
interface Takeover {
  file: string;
  pid: number | null;
}

/**
 * Removes `path`, which held the stale pid `pid`, while holding `<path>.takeover-<pid>`, and only if it still holds
 * `pid`: a run that read the same stale lock and took it over meanwhile has replaced it with its own, which stays.
 * Returns null when the caller should link its lock again at once (whether this process removed the stale lock or
 * found it gone or replaced), the other process's takeover when one is in progress (wait, then start again).
 */
function takeOver(mine: string, path: string, pid: number, what: string): Takeover | null {
  const takeover = `${path}.takeover-${pid}`;
  try {
    createWhole(mine, takeover);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const text = readText(takeover);
    if (text === null) return null; // that takeover has ended: start again
    const taker = /^[1-9][0-9]*$/.test(text) ? Number(text) : null;
    // Its taker died between creating and removing it (this process never leaves one: a takeover file of its own pid
    // is an earlier process's). It is still there after the check, so it is not a new one: no one will remove it.
    if (taker !== null && stale(taker) && readText(takeover) === text) {
      throw new PipelineError(
        'HCP_ERR_LOCKED',
        `A takeover of the stale lock for ${what} was interrupted (pid ${taker} is gone); remove ${takeover} and ${path} if no run is processing it`,
        { file: path },
      );
    }
    return { file: takeover, pid: taker }; // in progress (or, holding no pid, being written)
  }
  try {
    // Only the holder of this takeover file removes a lock holding `pid`: if it still does, it is the stale one.
    if (readText(path) === String(pid) && stale(pid)) rmSync(path, { force: true });
  } finally {
    rmSync(takeover, { force: true });
  }
  return null;
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

/** Waits (up to `ms`) for a short-lived lock, for the few renames of a commit. */
export async function withLock<T>(path: string, what: string, fn: () => T, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const lock = acquireLock(path, what);
      try {
        return fn();
      } finally {
        lock.release();
      }
    } catch (e) {
      if ((e as PipelineError).code !== 'HCP_ERR_LOCKED' || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Creates `path` with `mine`'s contents, failing with EEXIST if it exists: a hard link, or (where the file system has none) O_EXCL and a write. */
function createWhole(mine: string, path: string): void {
  try {
    linkSync(mine, path);
  } catch (e) {
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    const fd = openSync(path, 'wx');
    try {
      writeSync(fd, readFileSync(mine));
    } finally {
      closeSync(fd);
    }
  }
}
