/** Small filesystem helpers for atomic output. */
import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync, writeSync, writevSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { z } from 'zod';
import { PipelineError } from '../errors.js';
import { checkShape } from './schemas.js';

/**
 * Writes a file atomically: a temp file, fsync, rename. `data` may come in pieces, written in order. The temp file
 * is beside `path`, or in `tmpDir` (a run's staging directory, on the same file system) so that a kill leaves it
 * there, with the rest of the run's scratch, not in the output.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<string>, tmpDir?: string): void {
  mkdirSync(dirname(path), { recursive: true });
  if (tmpDir) mkdirSync(tmpDir, { recursive: true });
  const tmp = `${tmpDir ? join(tmpDir, basename(path)) : path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    if (typeof data === 'string') writeFully(fd, Buffer.from(data));
    else if (data instanceof Uint8Array) writeFully(fd, data);
    else for (const piece of data) writeFully(fd, Buffer.from(piece));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  faultPoint('atomic-write', basename(path));
  renameSync(tmp, path);
}

/**
 * `HCP_FAULT_KILL=<point>` (or `<point>:<text>`, where `detail` contains `text`): the process SIGKILLs itself
 * there (no handler runs), for the crash tests.
 */
export function faultPoint(point: string, detail = ''): void {
  const at = process.env.HCP_FAULT_KILL;
  if (at === undefined || !at.startsWith(point)) return;
  if (at === point || (at[point.length] === ':' && detail.includes(at.slice(point.length + 1)))) process.kill(process.pid, 'SIGKILL');
}

/**
 * Replaces `target` (a file or directory) with `staged`: the old one is
 * moved aside to `aside` (in the run's staging directory, on the same file
 * system, where it can never be read as output: a `hospital_id=H.old-*`
 * beside the partitions would be read by any glob over them), the new one
 * renamed in, then the old one deleted. `aside.target` records where the old
 * one came from: a kill between the two renames leaves neither in place, and
 * the next run of the partition puts the old one back (`restoreReplaced`)
 * before it clears the killed run's staging. A failed rename puts it back at
 * once.
 */
export function replacePath(staged: string, target: string, aside: string): void {
  mkdirSync(dirname(target), { recursive: true });
  if (!existsSync(target)) {
    renameSync(staged, target);
    return;
  }
  mkdirSync(dirname(aside), { recursive: true });
  writeFileSync(`${aside}.target`, target);
  renameSync(target, aside);
  faultPoint('replace-aside');
  try {
    renameSync(staged, target);
  } catch (e) {
    renameSync(aside, target);
    throw e;
  }
  rmSync(aside, { recursive: true, force: true });
  rmSync(`${aside}.target`, { force: true });
}

/**
 * Puts back what a killed `replacePath` had moved aside into `dir` (a dead run's staging) and whose target is
 * missing: the output keeps the previous version rather than losing it. Returns the targets restored.
 */
export function restoreReplaced(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const restored: string[] = [];
  for (const name of names) {
    if (!name.endsWith('.target')) continue;
    const aside = join(dir, name.slice(0, -'.target'.length));
    const target = readFileSync(join(dir, name), 'utf8');
    if (target === '' || !existsSync(aside) || existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    renameSync(aside, target);
    restored.push(target);
  }
  return restored;
}

export function writeJsonAtomic(path: string, value: unknown, tmpDir?: string): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', tmpDir);
}

/**
 * `writeJsonAtomic` of `value` with its property `key` (which `value` holds,
 * in its place, with any value) replaced by an object of `entries`, taken
 * and written one at a time: the same bytes as the whole text, without the
 * whole text or all the entries in memory at once. A hospital's sketch file
 * at 10M rows is ~0.6 MB of text built from ~70 sketches' states; built
 * whole, they outlived a few young-generation collections and stayed in the
 * old generation until a full one (the commit phase peaked ~5 MB higher).
 * Entries' keys must not look like array indices (JSON.stringify would put
 * those first).
 */
export function writeJsonAtomicBy(path: string, value: object, key: string, entries: Iterable<[string, unknown]>, tmpDir?: string): void {
  writeFileAtomic(path, jsonPieces(value, key, entries), tmpDir);
}

/** The text of `writeJsonAtomicBy`, in pieces: one per entry, and one per name and value of the other properties. */
export function* jsonPieces(value: object, key: string, entries: Iterable<[string, unknown]>): Generator<string> {
  // JSON.stringify(v, null, 2) of a value nested `indent` deep: every line after the first indented by it.
  const nested = (v: unknown, indent: string) => JSON.stringify(v, null, 2).replace(/\n/g, `\n${indent}`);
  let sep = '{\n';
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || typeof v === 'function') continue; // as JSON.stringify skips them
    yield `${sep}  ${JSON.stringify(k)}: `;
    sep = ',\n';
    if (k !== key) {
      yield nested(v, '  ');
      continue;
    }
    let inner = '{\n';
    for (const [ek, ev] of entries) {
      if (ev === undefined || typeof ev === 'function') continue;
      yield `${inner}    ${JSON.stringify(ek)}: ${nested(ev, '    ')}`;
      inner = ',\n';
    }
    yield inner === '{\n' ? '{}' : '\n  }';
  }
  yield sep === '{\n' ? '{}\n' : '\n}\n';
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

/**
 * Bytes gathered in a buffer and written to a file when it is full: many short appends, few writes. The
 * buffer starts at `first` bytes and doubles, as appends need, up to `max` (a file that gets little keeps
 * a small one); an append that does not fit even then is written at once. A caller may also write into
 * `buf` at `fill` itself, after `room`.
 */
export class BufferedWrites {
  buf: Buffer;
  fill = 0;
  /** Bytes written to the file so far (not counting `fill`). */
  private written = 0;

  constructor(
    readonly fd: number,
    private readonly max: number,
    first = max,
  ) {
    this.buf = Buffer.allocUnsafe(first);
  }

  /** The file's size once everything appended is written. */
  get size(): number {
    return this.written + this.fill;
  }

  /** Makes room for `n` more bytes at `fill` (growing the buffer, or writing it); false when they do not fit in it. */
  room(n: number): boolean {
    if (this.fill + n <= this.buf.length) return true;
    if (this.buf.length < this.max) {
      const grown = Buffer.allocUnsafe(Math.min(this.max, Math.max(2 * this.buf.length, this.fill + n)));
      this.buf.copy(grown, 0, 0, this.fill);
      this.buf = grown;
      if (this.fill + n <= this.buf.length) return true;
    }
    this.flush();
    return n <= this.buf.length;
  }

  append(src: Uint8Array, start: number, end: number): void {
    if (!this.room(end - start)) return this.writeNow(src.subarray(start, end));
    // A loop, not Buffer.copy: appends are short (a row, a cell), and copy() makes a view of the source range each call.
    const buf = this.buf;
    let at = this.fill;
    for (let i = start; i < end; i++) buf[at++] = src[i];
    this.fill = at;
  }

  text(s: string): void {
    if (!this.room(Buffer.byteLength(s))) return this.writeNow(Buffer.from(s));
    this.fill += this.buf.write(s, this.fill);
  }

  flush(): void {
    if (this.fill === 0) return;
    this.writeNow(this.buf.subarray(0, this.fill));
    this.fill = 0;
  }

  private writeNow(bytes: Uint8Array): void {
    writeFully(this.fd, bytes);
    this.written += bytes.length;
  }
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

/**
 * Every `*.json` file of a directory whose name passes `keep`, parsed (and checked against `shape`, if given:
 * src/sinks/schemas.ts), in name order; none if the directory is missing. A file removed between listing and reading (a concurrent commit deleting a hospital's sketch) is
 * skipped, as if listed a moment later.
 */
export function readJsonFiles<T>(dir: string, keep: (name: string) => boolean = (f) => f.endsWith('.json'), shape?: z.ZodType): { name: string; value: T }[] {
  if (!existsSync(dir)) return [];
  const files: { name: string; value: T }[] = [];
  for (const name of readdirSync(dir).filter(keep).sort()) {
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    let value: T;
    try {
      value = JSON.parse(text) as T;
    } catch (e) {
      // Named, or nobody can tell which of the output's many JSON files is damaged (a truncated write, a hand edit).
      throw new PipelineError('HCP_ERR_INTERNAL', `${join(dir, name)} is not valid JSON (${(e as Error).message}): the output directory is damaged`, { file: join(dir, name) }, { cause: e });
    }
    if (shape) value = checkShape<T>(shape, value, join(dir, name));
    files.push({ name, value });
  }
  return files;
}

/**
 * Makes the directory an output option names (`--out`, `--landing`), with its parents, or fails with exit 2
 * (HCP_ERR_OUTPUT_UNUSABLE) naming the option: a path that is a file, lies under one, or cannot be created or
 * written is the user's to fix, not an internal error. One level at a time, not `mkdirSync(…, { recursive })`:
 * under /proc a mkdir answers ENOENT below a directory that exists, and Node's recursive mkdir then loops for
 * ever, where no signal handler can run.
 */
export function makeOutputDir(dir: string, option: string): void {
  const fail = (why: string): never => {
    throw new PipelineError('HCP_ERR_OUTPUT_UNUSABLE', `--${option} ${dir} cannot be used as a directory: ${why}`, { file: dir, option });
  };
  const missing: string[] = [];
  for (let at = resolve(dir); ; at = dirname(at)) {
    let isDir: boolean;
    try {
      isDir = statSync(at).isDirectory();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) fail((e as Error).message);
      missing.push(at);
      continue;
    }
    if (!isDir) fail(`${at} is not a directory`);
    break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') fail((e as Error).message);
      // Made meanwhile by another run, or a dangling symbolic link.
      if (!statSync(d, { throwIfNoEntry: false })?.isDirectory()) fail(`${d} is not a directory (a dangling symbolic link?)`);
    }
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    fail((e as Error).message);
  }
}

/** Removes a directory if it is empty (another run's files in it, or it being gone already, are fine). */
export function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* not empty, or already gone */
  }
}
