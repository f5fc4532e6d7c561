/**
 * What the numbers were measured on: machine, load, and the versions of
 * everything compared. The load average matters here: the machine is
 * shared, so only ratios from the same run are compared.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly loadAtStart: readonly number[];
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export const loadNow = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);

/** The project's own version from package.json. */
export function projectVersion(): string {
  try {
    return (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The version of an installed npm package, or null. */
export function packageVersion(name: string): string | null {
  try {
    return (JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

/** The engine's commit (read-only git), with "+changes" when src/ or workers/ differ from it. */
export function engineCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['--no-optional-locks', 'status', '--porcelain', '--untracked-files=no', '--', 'src', 'workers'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head}+changes` : head;
  } catch {
    return 'unknown';
  }
}

/** A fingerprint of the compiled engine: every .js file under ROOT/src and ROOT/workers. */
export function engineBuild(root = 'dist'): string {
  const h = createHash('sha256');
  const walk = (dir: string, rel: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
      else if (e.name.endsWith('.js')) h.update(`${rel}/${e.name}\0`).update(readFileSync(join(dir, e.name)));
    }
  };
  walk(join(root, 'src'), 'src');
  walk(join(root, 'workers'), 'workers');
  return h.digest('hex').slice(0, 12);
}
