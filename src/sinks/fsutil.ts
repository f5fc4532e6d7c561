/** Small filesystem helpers for atomic output. */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeSync, writevSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Writes a file atomically: a temp file in the same directory, fsync, rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    writeFully(fd, typeof data === 'string' ? Buffer.from(data) : data);
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


/**
 * Reads `length` bytes at file `position` into buf[at…], looping over short
 * reads; returns the bytes read (fewer only at end of file).
 */
export function readFully(fd: number, buf: Uint8Array, at: number, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, at + got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** Writes all of bytes at the file's current position, looping over short writes. */
export function writeFully(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Writes all of `parts`, in order, at the file's current position: one writev, continued after a short write. */
export function writevFully(fd: number, parts: Uint8Array[]): void {
  let rest = parts.filter((p) => p.length > 0);
  while (rest.length > 0) {
    let wrote = writevSync(fd, rest);
    while (rest.length > 0 && wrote >= rest[0].length) wrote -= rest.shift()!.length;
    if (wrote > 0) rest[0] = rest[0].subarray(wrote);
  }
}

/** Every `*.json` file of a directory whose name passes `keep`, parsed, in name order; none if the directory is missing. */
export function readJsonFiles<T>(dir: string, keep: (name: string) => boolean = (f) => f.endsWith('.json')): { name: string; value: T }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter(keep)
    .sort()
    .map((name) => ({ name, value: JSON.parse(readFileSync(join(dir, name), 'utf8')) as T }));
}
