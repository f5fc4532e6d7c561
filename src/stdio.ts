/**
 * stdout and stderr as best-effort sinks. Writing the human log (stderr: log
 * lines, the progress meter) or the JSON summary (stdout) can fail: a reader
 * that went away (`run … 2>&1 | head -1`, `run … | true`: EPIPE), a full disk
 * (`2>/dev/full`: ENOSPC). Such a failure must not change the run's outcome
 * or exit code: an unhandled 'error' on either stream killed the process
 * (exit 1, staging and locks left behind, half the datasets committed). Log
 * lines nobody can read are dropped; the summary is written once the run's
 * work is done, so losing it loses nothing but the summary.
 *
 * Node reports a failed write through the stream's 'error' event, for pipes
 * (asynchronously) and for files and /dev/full alike (written with writeSync,
 * whose throw Node 20's SyncWriteStream turns into an 'error' on the next
 * tick). `write` is also guarded against a synchronous throw, for streams
 * that do throw.
 */
import type { Writable } from 'node:stream';

/**
 * Makes `stream` drop what it cannot write: its 'error' events are handled
 * (`onError` told the first one) and a throw from `write` is caught.
 */
export function bestEffort(stream: Writable, onError: (e: NodeJS.ErrnoException) => void = () => {}): void {
  let failed = false;
  const fail = (e: NodeJS.ErrnoException): void => {
    if (failed) return;
    failed = true;
    try {
      onError(e);
    } catch {
      /* nothing more to do about it */
    }
  };
  stream.on('error', fail);
  const write = stream.write;
  stream.write = function (this: Writable, ...args: unknown[]): boolean {
    try {
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } catch (e) {
      fail(e as NodeJS.ErrnoException);
      return true;
    }
  } as Writable['write'];
}

/**
 * The CLI's stdio: stderr drops the lines it cannot write; stdout too, saying
 * on stderr (best effort) why the summary is missing, unless its reader simply
 * went away (EPIPE, `run … | true`).
 */
export function bestEffortStdio(): void {
  bestEffort(process.stderr);
  bestEffort(process.stdout, (e) => {
    if (e.code !== 'EPIPE') process.stderr.write(`warning: the JSON summary could not be written to stdout (${e.code ?? e.message})\n`);
  });
}
