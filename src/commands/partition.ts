/**
 * `partition`: split a combined file into one file per hospital, streaming,
 * keeping every record byte for byte (rows with an invalid hospital_id, or
 * with more or fewer fields than the header, go to
 * `hospital_id=__invalid__.csv`, so they are quarantined, not dropped).
 * For each split file, its line map (`DIR/_lines/<D>/…`, src/sinks/linemap.ts):
 * where each of its records starts in the combined file, so that `process` of the split
 * file names the combined file and its lines in rejects.csv (SPEC §5).
 */
import { randomUUID } from 'node:crypto';
import { constants as bufferConstants, isAscii, isUtf8 } from 'node:buffer';
import { closeSync, fstatSync, openSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import type { Config } from '../config.js';
import { need } from '../config.js';
import { preflight } from '../coordinator.js';
import { PipelineError } from '../errors.js';
import { committed, onInterrupt, willCommit } from '../lifecycle.js';
import type { Logger } from '../log.js';
import { countLF, parseText, Problem } from '../parse/csv.js';
import { planCuts } from '../parse/cutter.js';
import { BufferedWrites, makeOutputDir, readFully } from '../sinks/fsutil.js';
import { lineMapDir, LineMapWriter, lineMapPath } from '../sinks/linemap.js';
import { bomLength } from '../parse/header.js';
import type { Dataset } from '../registry.js';
import { ALL_HOSPITALS, INVALID_HOSPITAL, isValidHospitalId } from '../rules/fields.js';
import { withMetrics } from './with-metrics.js';

export interface PartitionSummary {
  dataset: Dataset;
  rows_read: number;
  /** Bytes read: the whole file, header (and BOM) included, as for process. */
  bytes: number;
  partitions: { hospital_id: string; path: string; rows: number }[];
}

/**
 * The `partition` command, with the metrics every command records (SPEC §7): its stage time, the bytes it read
 * and the records it split. It counts no hospital's rows, so its pushed series go to a group of its own
 * (`…/dataset/<D>/hospital_id/ALL/command/partition`, src/metrics/grouping.ts).
 */
export async function partitionCommand(cfg: Config, log: Logger): Promise<{ exitCode: number; summary: Record<string, unknown> }> {
  const dataset = need(cfg.dataset, 'dataset', 'partition');
  const input = need(cfg.input, 'input', 'partition');
  const landing = need(cfg.landing, 'landing', 'partition');
  const plan = () => ({ groups: [{ dataset, hospitalIds: [] }], home: { dataset, hospitalId: ALL_HOSPITALS, command: 'partition' } });
  willCommit(splitName(dataset));
  return withMetrics(cfg, log, plan, async (metrics) => {
    const t0 = performance.now();
    const s = await partitionFile(dataset, input, landing, cfg.chunkSize, cfg.maxRecordBytes);
    const ms = performance.now() - t0;
    metrics?.observeStage('partition', ms / 1000);
    metrics?.addBytesRead(dataset, s.bytes);
    metrics?.addPartitionRows(dataset, s.rows_read);
    log.info(`partition ${dataset}: ${s.rows_read} rows into ${s.partitions.length} hospital file(s)`);
    return { exitCode: 0, summary: { command: 'partition', status: 'ok', ...s, duration_ms: Math.round(ms) } };
  });
}

/** Bytes buffered per hospital file before they are written: the buffer starts small and doubles up to this. */
const OUT_BUFFER = 256 << 10;
const FIRST_BUFFER = 16 << 10;
const MAX_STRING_LENGTH = bufferConstants.MAX_STRING_LENGTH;
const NEWLINE = Buffer.from('\n');
/** Distinct hospital_id fields whose file is remembered. */
const FIELDS_REMEMBERED = 4096;

/**
 * A copy of a string that holds its own characters: a field cut out of a
 * chunk's text is a slice of it (in V8, from 13 characters), and a slice
 * kept in a map would keep the whole chunk's text in memory with it.
 */
const flat = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

/**
 * The hospital_id field as the split has always read it: decoded as UTF-8
 * when its record is valid UTF-8, as Latin-1 otherwise (the parser decoded
 * it as Latin-1). Only a field with a byte above 0x7f can differ: no valid ID
 * has one, but trimming may leave a valid ID (U+00A0 is white space).
 */
function hospitalField(latin1: string, buf: Buffer, start: number, end: number): string {
  for (let i = 0; i < latin1.length; i++) {
    if (latin1.charCodeAt(i) > 0x7f) return isUtf8(buf.subarray(start, end)) ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1;
  }
  return latin1;
}

/** The split's name in an interrupt message (src/lifecycle.ts). */
const splitName = (dataset: Dataset) => `the ${dataset} split`;

export async function partitionFile(dataset: Dataset, input: string, landing: string, chunkSize: number, maxRecordBytes: number): Promise<PartitionSummary> {
  const { header, size } = preflight(dataset, input);
  // Only the dataset's directories need to be ours to write: the landing directory may be shared, read-only.
  const dir = join(landing, dataset);
  makeOutputDir(dir, 'landing');
  makeOutputDir(lineMapDir(dir), 'landing');
  if (!header) return { dataset, rows_read: 0, bytes: size, partitions: [] };
  const fd = openSync(input, 'r');
  const headBytes = Buffer.alloc(header.dataOffset);
  readFully(fd, headBytes, 0, header.dataOffset, 0);
  let headerText = headBytes.subarray(bomLength(headBytes));
  if (headerText[headerText.length - 1] !== 0x0a) headerText = Buffer.concat([headerText, Buffer.from('\n')]);
  // Each hospital's file is written beside its final name and renamed into place only once every check
  // passed: a failed or interrupted split leaves the landing directory as it was.
  const tmp = `.tmp-${randomUUID()}`;
  // Per hospital: its file, its line map, and the line its next record starts on (the header's lines come first).
  const splitFirstLine = countLF(headerText, 0, headerText.length) + 1;
  // Records are copied into their hospital's buffer (one that grows as the file gets rows), not kept as a Buffer each.
  type Out = { out: BufferedWrites; rows: number; path: string; line: number; map: LineMapWriter };
  const outs = new Map<string, Out>();
  const discard = () => {
    forget();
    for (const o of outs.values()) {
      rmSync(o.path + tmp, { force: true });
      rmSync(lineMapPath(o.path) + tmp, { force: true });
    }
  };
  const forget = onInterrupt(discard);
  const fail = (message: string): never => {
    discard();
    throw new PipelineError('HCP_ERR_LEDGER', message, { file: input });
  };
  const target = (h: string) => {
    let o = outs.get(h);
    if (!o) {
      const path = resolve(dir, `hospital_id=${h}.csv`);
      o = { out: new BufferedWrites(openSync(path + tmp, 'w'), OUT_BUFFER, FIRST_BUFFER), rows: 0, path, line: splitFirstLine, map: new LineMapWriter(lineMapPath(path) + tmp) };
      outs.set(flat(h), o);
      o.out.append(headerText, 0, headerText.length);
    }
    return o;
  };
  // The file of each hospital_id field as read (before trimming): rows repeat a few, so each is checked once.
  // Only ASCII fields are remembered (another's reading depends on its record's bytes), and only so many.
  const byField = new Map<string, Out>();
  const fileOf = (field: string, start: number, end: number) => {
    let o = byField.get(field);
    if (o) return o;
    const h = hospitalField(field, buf, start, end).trim();
    o = target(isValidHospitalId(h) ? h : INVALID_HOSPITAL);
    if (byField.size < FIELDS_REMEMBERED && isAscii(Buffer.from(field, 'latin1'))) byField.set(flat(field), o);
    return o;
  };
  let buf = Buffer.alloc(0);
  let rows = 0;
  let pos = header.dataOffset;
  // The line the current region starts on in the input, as process counts it (src/coordinator.ts).
  let lineBase = header.lines + 1;
  let ok = false;
  try {
    let pending = Buffer.alloc(0);
    for (;;) {
      // The split is synchronous, and a SIGINT/SIGTERM handler (src/lifecycle.ts) runs only when the
      // event loop turns: once a chunk, so an interrupt takes effect within one chunk's work.
      await turn();
      // A record longer than a chunk is read in steps as long as what is pending (as process reads, src/coordinator.ts).
      // Within the longest string a piece can be decoded into (a record of hundreds of MB: the doubled read would pass it).
      const step = Math.max(chunkSize, Math.min(pending.length, MAX_STRING_LENGTH - pending.length));
      buf = Buffer.allocUnsafe(pending.length + step);
      pending.copy(buf, 0);
      const got = readFully(fd, buf, pending.length, step, pos);
      pos += got;
      const len = pending.length + got;
      const atEof = got === 0 || pos >= size;
      const { cuts, consumed } = planCuts(buf, len, atEof, maxRecordBytes);
      let from = 0;
      for (const cut of cuts) {
        // Decoded as Latin-1, one char a byte: the parser's offsets are byte offsets from `from`.
        const { lines } = parseText(buf.toString('latin1', from, cut), (r) => {
          rows++;
          const start = from + r.start;
          const end = from + r.end;
          // A record with the wrong field count goes to __invalid__: its hospital_id
          // column may hold another field (a patient ID), never to become a file name.
          const o = r.fields.length === header.names.length ? fileOf(r.fields[header.index[0]], start, end) : target(INVALID_HOSPITAL);
          o.rows++;
          o.map.add(o.line, lineBase + r.line, end - start + 1);
          o.out.append(buf, start, end);
          o.line += countLF(buf, start, end);
          // A record that ends the file without a LF gets one, so the next record of its file starts on a line of
          // its own; unless its quote is still open (read to the end of the file): the LF would join its last field,
          // and nothing follows it in any split file.
          if (buf[end - 1] !== 0x0a && !(r.problem & Problem.UnterminatedQuote)) {
            o.out.append(NEWLINE, 0, 1);
            o.line++;
          }
          // A record given up on at its line (unterminated quote): process of the split file must cut there too.
          if (r.problem & Problem.UnterminatedQuote) o.map.cut(o.out.size);
        });
        lineBase += lines;
        from = cut;
      }
      pending = Buffer.from(buf.subarray(consumed, len));
      if (atEof) break;
    }
    for (const o of outs.values()) {
      o.out.flush();
      o.map.finish(input, o.out.size, fstatSync(o.out.fd).mtimeMs);
    }
    ok = true;
  } catch (e) {
    // Only a read that fails is the input's fault (exit 2); a write that fails (a full landing disk) is not its own.
    if ((e as NodeJS.ErrnoException).syscall !== 'read') throw e;
    throw new PipelineError('HCP_ERR_INPUT_UNREADABLE', `Could not split ${input}: ${(e as Error).message}`, { file: input });
  } finally {
    closeSync(fd);
    for (const o of outs.values()) closeSync(o.out.fd);
    if (!ok) discard();
  }
  const partitions = [...outs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([h, o]) => ({ hospital_id: h, path: o.path, rows: o.rows }));
  const total = partitions.reduce((s, p) => s + p.rows, 0);
  // Every byte found at preflight, and no more, must have been read: a file that shrank or grew meanwhile
  // was not split whole (the same byte ledger as process, src/coordinator.ts).
  if (pos !== size) fail(`Byte ledger mismatch for ${input}: ${size - header.dataOffset} data bytes at the start, ${pos - header.dataOffset} read`);
  if (total !== rows) fail(`partition lost rows: read ${rows}, wrote ${total}`);
  // A signal that came during the last chunk is handled here, before anything is renamed into place.
  await turn();
  // The map first: killed in between, the previous split file is left with a map that does not match its size.
  for (const o of outs.values()) {
    renameSync(lineMapPath(o.path) + tmp, lineMapPath(o.path));
    renameSync(o.path + tmp, o.path);
  }
  forget();
  committed(splitName(dataset));
  return { dataset, rows_read: rows, bytes: size, partitions };
}
