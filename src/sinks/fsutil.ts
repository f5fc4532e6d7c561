/** Small filesystem helpers for atomic output. */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes a file atomically: a temp file in the same directory, fsync, rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Replaces `target` (a file or directory) with `staged`: the old one is
 * moved aside, the new one renamed in, then the old one deleted. A crash in
 * between leaves either the old or the new, plus a `.old-*` to clean.
 */
export function replacePath(staged: string, target: string): void {
  mkdirSync(dirname(target), { recursive: true });
  const aside = `${target}.old-${process.pid}-${Date.now()}`;
  const had = existsSync(target);
  if (had) renameSync(target, aside);
  renameSync(staged, target);
  if (had) rmSync(aside, { recursive: true, force: true });
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

