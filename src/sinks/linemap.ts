/**
 * Line maps: where each record of a split file (`partition`'s
 * `hospital_id=<H>.csv`) starts in the monthly file it came from, so that
 * `process` of the split file writes the monthly file's `source_file` and
 * `line_number` into rejects.csv (SPEC §5): an analyst traces a reject back
 * to the hospital's delivery, not to a file that only exists inside the
 * pipeline.
 *
 * `DIR/_lines/<dataset>/hospital_id=<H>.csv.lines` for the split file
 * `DIR/<dataset>/hospital_id=<H>.csv` (outside the dataset's folder, which
 * holds the split files only, as SPEC §6 lays it out), written by `partition`
 * and renamed into place just before the split file: per record, in file order, two little-endian
 * uint32s (its first line in the split file, its first line in the source),
 * then a JSON trailer `{format, version, source_file, size, records, cuts,
 * longest}` and the trailer's byte length as a uint32. The split file must be
 * cut into the records partition wrote, but the cutter (src/parse/cutter.ts)
 * decides on more than a record's bytes: it gives up on a quote still open
 * after `--max-record-bytes` at a chunk's end, and cuts that record at its
 * line. So `cuts`: where, in the split file, each record ends that the
 * input's reading gave up on (its quote is still open in the split file: the
 * hospital's next such record would close it, and the two be read as one);
 * and `longest`: the longest record written, below which process of the split
 * file gives up on no record (a long quoted record the input's chunks held
 * whole might fall across a chunk's end of the split file). `size` and
 * `mtime_ms` are the split file's when written: a split file changed since (a
 * corrected delivery copied over it, an edit) no longer matches its map, which
 * is then ignored with a warning, and its own lines are used; so is a map that
 * cannot be read. Paths are resolved: the map is found however the split
 * file is spelled, and `source_file` is absolute.
 *
 * `process` reads the map a window at a time, as the chunks' results are
 * applied in order: memory stays bounded by a chunk's records, and only the
 * rejects' lines are looked up.
 */
import { appendFileSync, closeSync, existsSync, fstatSync, openSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PipelineError } from '../errors.js';
import { readFully } from './fsutil.js';

const FORMAT = 'hcp-line-map';
const VERSION = 1;
/** Pairs buffered per split file before a write (64 KiB). */
const BLOCK = 8192;

/** The directory of the line maps of the split files in `splitDir` (`DIR/<dataset>` → `DIR/_lines/<dataset>`). */
export function lineMapDir(splitDir: string): string {
  const dir = resolve(splitDir);
  return join(dirname(dir), '_lines', basename(dir));
}

/** Where the line map of a split file (`DIR/<dataset>/hospital_id=<H>.csv`) is. */
export function lineMapPath(splitFile: string): string {
  // Resolved: the same file spelled `hospital_id=H.csv` from inside its folder has the same map.
  return join(lineMapDir(dirname(resolve(splitFile))), `${basename(splitFile)}.lines`);
}

/** Whether `file` is named as partition names its split files (only those have line maps). */
const isSplitFile = (file: string) => /^hospital_id=[A-Za-z0-9_-]{1,32}\.csv$/.test(basename(file));

interface Trailer {
  format: string;
  version: number;
  source_file: string;
  size: number;
  /** The split file's modification time (ms) when written: with `size`, what ties the map to that file. */
  mtime_ms: number;
  records: number;
  cuts: number[];
  longest: number;
}

/**
 * Writes one split file's line map as its records are written (see the module comment for the format). It
 * appends a block at a time, holding no descriptor open: partition already holds one per hospital.
 */
export class LineMapWriter {
  private pairs = new Uint32Array(2 * BLOCK);
  private n = 0;
  records = 0;
  private readonly cuts: number[] = [];
  private longest = 0;

  constructor(private readonly path: string) {
    writeFileSync(path, '');
  }

  /** A record of `bytes` bytes starts on `splitLine` of the split file and on `sourceLine` of the input. */
  add(splitLine: number, sourceLine: number, bytes: number): void {
    if (bytes > this.longest) this.longest = bytes;
    this.pairs[2 * this.n] = splitLine;
    this.pairs[2 * this.n + 1] = sourceLine;
    this.records++;
    if (++this.n === BLOCK) this.flush();
  }

  /** A record the input's reading gave up on (an unterminated quote) ends at byte `offset` of the split file. */
  cut(offset: number): void {
    this.cuts.push(offset);
  }

  flush(): void {
    if (this.n === 0) return;
    appendFileSync(this.path, new Uint8Array(this.pairs.buffer, 0, 8 * this.n));
    this.n = 0;
  }

  /** Writes what is buffered and the trailer; `size`: the split file's final size. */
  finish(sourceFile: string, size: number, mtimeMs: number): void {
    this.flush();
    const trailer: Trailer = { format: FORMAT, version: VERSION, source_file: resolve(sourceFile), size, mtime_ms: mtimeMs, records: this.records, cuts: this.cuts, longest: this.longest };
    const json = Buffer.from(JSON.stringify(trailer));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length);
    appendFileSync(this.path, Buffer.concat([json, len]));
  }
}

/** A split file's line map, read forward one window (a chunk's lines) at a time. */
export class LineMap {
  private readonly end: number;
  private pos = 0;
  private readonly block = Buffer.alloc(8 * BLOCK);
  private blockPairs = 0;
  private at = 0;
  /** The current window: split lines (ascending) and their source lines. */
  private split = new Uint32Array(1024);
  private source = new Uint32Array(1024);
  private size = 0;
  /** Records taken into windows so far. */
  private taken = 0;

  private constructor(
    private readonly fd: number,
    private readonly file: string,
    readonly sourceFile: string,
    readonly records: number,
    /** Byte offsets, ascending, where the split file must be cut (see the module comment). */
    readonly cuts: readonly number[],
    /** The longest record in the split file, in bytes. */
    readonly longest: number,
    pairsBytes: number,
  ) {
    this.end = pairsBytes;
  }

  /**
   * The line map of `input` when it has one that matches it (`inputSize` bytes, and its modification time),
   * else null. A map that does not fit the file (changed since partition: a corrected delivery copied over it,
   * an edit, a re-partition killed between its two renames) or cannot be read is not used: `warn` hears why,
   * and the file's own lines are used.
   */
  static open(input: string, inputSize: number, warn: (message: string) => void): LineMap | null {
    if (!isSplitFile(input)) return null;
    const file = lineMapPath(input);
    if (!existsSync(file)) return null;
    const ignore = (why: string) => {
      warn(`${input}: its line map ${file} is not used (${why}): line numbers in rejects.csv refer to ${input}`);
      return null;
    };
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (e) {
      return ignore((e as Error).message);
    }
    let t: (Trailer & { pairsBytes: number }) | string;
    try {
      t = readTrailer(fd, input, inputSize);
    } catch (e) {
      t = (e as Error).message;
    }
    if (typeof t === 'string') {
      closeSync(fd);
      return ignore(t);
    }
    return new LineMap(fd, file, t.source_file, t.records, t.cuts, t.longest, t.pairsBytes);
  }

  /** Takes the records starting on split lines up to `last` (inclusive) as the window; the previous window is dropped. */
  window(last: number): void {
    this.size = 0;
    for (;;) {
      if (this.at === this.blockPairs) {
        if (this.pos >= this.end) return;
        const want = Math.min(this.block.length, this.end - this.pos);
        const got = readFully(this.fd, this.block, 0, want, this.pos);
        if (got !== want) throw this.mismatch('the map ends early');
        this.pos += got;
        this.blockPairs = got / 8;
        this.at = 0;
      }
      const s = this.block.readUInt32LE(8 * this.at);
      if (s > last) return;
      if (this.size === this.split.length) {
        this.split = grow(this.split);
        this.source = grow(this.source);
      }
      this.split[this.size] = s;
      this.source[this.size++] = this.block.readUInt32LE(8 * this.at + 4);
      this.at++;
      this.taken++;
    }
  }

  /** The source line of the record starting on split line `line`, which must be in the current window. */
  get(line: number): number {
    let lo = 0;
    let hi = this.size - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.split[mid];
      if (v === line) return this.source[mid];
      if (v < line) lo = mid + 1;
      else hi = mid - 1;
    }
    throw this.mismatch(`no record starts on line ${line}`);
  }

  /**
   * Checks that the file held exactly the records the map lists (`rowsRead`): the split file was read as
   * the input was.
   */
  finish(rowsRead: number): void {
    if (this.taken !== this.records || rowsRead !== this.records) {
      throw new PipelineError(
        'HCP_ERR_LEDGER',
        `Ledger mismatch for ${this.file}: partition split ${this.records} records from ${this.sourceFile} into this file, ${rowsRead} were read ` +
          '(records read together or apart unlike in the input): process the input itself',
        { file: this.file },
      );
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private mismatch(why: string): PipelineError {
    return new PipelineError('HCP_ERR_LEDGER', `Line map ${this.file} does not fit its file: ${why}`, { file: this.file });
  }
}

function grow(a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(2 * a.length);
  b.set(a);
  return b;
}

/** The trailer of the map open as `fd`, with the pairs' length, when it fits `input` (`inputSize` bytes); else why not. */
function readTrailer(fd: number, input: string, inputSize: number): (Trailer & { pairsBytes: number }) | string {
  const size = fstatSync(fd).size;
  if (size < 4) return 'too short';
  const len = Buffer.alloc(4);
  readFully(fd, len, 0, 4, size - 4);
  const jsonLen = len.readUInt32LE(0);
  if (jsonLen + 4 > size) return 'bad trailer length';
  const json = Buffer.alloc(jsonLen);
  readFully(fd, json, 0, jsonLen, size - 4 - jsonLen);
  let t: Trailer;
  try {
    t = JSON.parse(json.toString('utf8')) as Trailer;
  } catch {
    return 'bad trailer';
  }
  const pairsBytes = size - 4 - jsonLen;
  const cutsOk = Array.isArray(t.cuts) && t.cuts.every((c, i) => Number.isInteger(c) && c > (i === 0 ? 0 : t.cuts[i - 1]) && c <= t.size);
  if (t.format !== FORMAT || t.version !== VERSION || typeof t.source_file !== 'string' || pairsBytes !== 8 * t.records || !cutsOk || !Number.isInteger(t.longest)) return 'unknown format';
  const mtime = statSync(input).mtimeMs;
  if (t.size !== inputSize || t.mtime_ms !== mtime) {
    return `it is for a file of ${t.size} bytes modified at ${new Date(t.mtime_ms).toISOString()}, not ${inputSize} bytes at ${new Date(mtime).toISOString()}: changed since partition?`;
  }
  return { ...t, pairsBytes };
}
