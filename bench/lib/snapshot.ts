/**
 * The engine is being optimised while benchmarks run, and `tsc` may rewrite
 * dist/ at any moment. A run therefore copies the compiled engine once
 * (dist/src, dist/workers) into DIR/engine/<fingerprint>/ and measures that
 * copy throughout: one build per run, named in the report. Bare imports
 * (piscina, hyparquet-writer…) resolve through a node_modules symlink.
 */
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { engineBuild } from './machine.js';

export interface EngineSnapshot {
  /** Path of the snapshot's cli.js. */
  readonly cli: string;
  /** Fingerprint of the compiled engine measured. */
  readonly build: string;
}

/** Copies dist/{src,workers} (retrying while a concurrent build changes them) and returns the copy's CLI. */
export function snapshotEngine(out: string, dist = 'dist'): EngineSnapshot {
  for (let attempt = 0; attempt < 5; attempt++) {
    const build = engineBuild(dist);
    const dir = resolve(out, 'engine', build);
    const cli = join(dir, 'dist', 'src', 'cli.js');
    if (existsSync(join(dir, '.complete'))) return { cli, build };
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(tmp, 'dist'), { recursive: true });
    cpSync(join(dist, 'src'), join(tmp, 'dist', 'src'), { recursive: true });
    cpSync(join(dist, 'workers'), join(tmp, 'dist', 'workers'), { recursive: true });
    // ESM needs "type": "module" from the nearest package.json.
    writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'hcp-engine-snapshot', private: true, type: 'module' }) + '\n');
    symlinkSync(resolve('node_modules'), join(tmp, 'node_modules'), 'dir');
    if (engineBuild(join(tmp, 'dist')) !== build) {
      rmSync(tmp, { recursive: true, force: true });
      continue; // dist/ changed while copying: take it again
    }
    writeFileSync(join(tmp, '.complete'), `${new Date().toISOString()}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return { cli, build };
  }
  throw new Error('dist/ kept changing while the engine was being copied; wait for the build to settle and rerun');
}
