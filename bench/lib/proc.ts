/**
 * Runs one benchmark command as a child process and measures it: wall time
 * (from spawn to exit, so interpreter start-up counts for every tool alike)
 * and, through `/usr/bin/time -v`, the child's peak resident set size,
 * which includes worker threads (they live in the same process).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface Measured {
  readonly command: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly wallMs: number;
  /** Peak RSS in bytes, or null when /usr/bin/time is not installed. */
  readonly maxRssBytes: number | null;
  readonly userS: number | null;
  readonly sysS: number | null;
  /** The last stdout line parsed as JSON, when it is JSON. */
  readonly json: Record<string, unknown> | null;
  /** The last few KiB of stderr, for error messages. */
  readonly stderrTail: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

/** Parses the report of GNU time -v. */
export function parseGnuTime(text: string): { maxRssBytes: number | null; userS: number | null; sysS: number | null } {
  const num = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : null;
  };
  const kb = num(/Maximum resident set size \(kbytes\):\s*(\d+)/);
  return { maxRssBytes: kb === null ? null : kb * 1024, userS: num(/User time \(seconds\):\s*([\d.]+)/), sysS: num(/System time \(seconds\):\s*([\d.]+)/) };
}

function lastJsonLine(stdout: string): Record<string, unknown> | null {
  const lines = stdout.trimEnd().split('\n');
  const last = lines[lines.length - 1];
  if (!last?.startsWith('{')) return null;
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Runs `cmd args` to completion (killed after timeoutMs) and measures it. */
export function measure(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Measured> {
  const withTime = existsSync(GNU_TIME);
  const dir = mkdtempSync(join(tmpdir(), 'hcp-bench-'));
  const timeFile = join(dir, 'time.txt');
  const argv = withTime ? ['-v', '-o', timeFile, cmd, ...args] : [...args];
  const command = [cmd, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // Its own process group, so a timeout ends the tool and everything it started.
    const child = spawn(withTime ? GNU_TIME : cmd, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      if (stdout.length > 4 << 20) stdout = stdout.slice(-(1 << 20));
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr = (stderr + s).slice(-16384);
    });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          if (child.pid !== undefined) {
            try {
              process.kill(-child.pid, 'SIGKILL');
            } catch {
              /* already gone */
            }
          }
        }, opts.timeoutMs)
      : null;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      reject(e);
    });
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - t0;
      if (timer) clearTimeout(timer);
      const time = withTime && existsSync(timeFile) ? parseGnuTime(readFileSync(timeFile, 'utf8')) : { maxRssBytes: null, userS: null, sysS: null };
      rmSync(dir, { recursive: true, force: true });
      // GNU time exits with the child's status; a child killed by a signal shows as 128+n.
      resolve({ command, exitCode: code, signal, timedOut, wallMs, ...time, json: lastJsonLine(stdout), stderrTail: stderr.slice(-4096) });
    });
  });
}

/** Throws with the tool's stderr when a measured run did not succeed. */
export function ensureOk(m: Measured, what: string): Measured {
  if (m.exitCode === 0 && m.json) return m;
  const why = m.timedOut ? 'timed out' : `exit ${m.exitCode ?? m.signal}`;
  throw new Error(`${what} failed (${why}): ${m.command}\n${m.stderrTail}`);
}
