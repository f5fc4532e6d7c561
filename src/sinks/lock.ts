/**
 * Partition locks: a file holding the owner's pid, created whole (hard-linked
 * into place, which fails if it exists; O_EXCL where links are not supported). A second run for the same partition
 * refuses to start (exit 2); a lock left by a process that no longer exists
 * is taken over.
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

export function acquireLock(path: string, what: string): Lock {
  mkdirSync(dirname(path), { recursive: true });
  // The lock appears with its pid already in it (written to a file of this process's, then linked into place):
  // created empty and then written, it could be read empty in between, as pid 0, a dead owner, and taken over.
  const mine = `${path}.${process.pid}-${randomUUID()}`;
  writeFileSync(mine, String(process.pid));
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
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
        const text = readFileSync(path, 'utf8').trim();
        const pid = Number(text);
        // A lock without a pid (written by something else, or by an older engine caught half-way) counts as held.
        if (!/^[1-9][0-9]*$/.test(text)) throw new PipelineError('HCP_ERR_LOCKED', `The lock for ${what} holds no pid; remove ${path} if no run is processing it`, { file: path });
        if (pid !== process.pid && alive(pid)) {
          throw new PipelineError('HCP_ERR_LOCKED', `Another run (pid ${pid}) is processing ${what}; refusing to start`, { file: path });
        }
        rmSync(path, { force: true }); // stale: its owner is gone
      }
    }
  } finally {
    rmSync(mine, { force: true });
  }
  throw new PipelineError('HCP_ERR_LOCKED', `Could not take the lock for ${what}`, { file: path });
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
