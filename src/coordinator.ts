/**
 * The coordinator: the only module that knows about files, the pool and
 * backpressure. One `process` pass over one input file:
 *
 *   input.csv
 *      │ read (fs, chunkSize bytes)         ┌──────────── worker pool (Piscina) ────────────┐
 *      ▼                                    │                                               │
 *   cutter: cut at record boundaries ──────►│ chunk task: parse → rules → transform         │
 *      (quote parity, bounded in flight)    │   → accepted rows by (hospital, month),       │
 *                                           │     rejects with every rule code              │
 *      ┌────────── results, in chunk order ◄┘                                               │
 *      ▼                                                                                    │
 *   dedupe (row hashes, first kept) ─► quarantine/…/rejects.csv                             │
 *      │                                                                                    │
 *      ▼ batches per (hospital, month) ────►│ encode task: Parquet row group + sketches     │
 *      ┌──────── results, in dispatch order ◄┘                                               │
 *      ▼                                    └───────────────────────────────────────────────┘
 *   curated/…/part-00000.parquet (row groups appended, footer at close)
 *   sketches/…/hospital_id=H.json, _manifests/…  ─► ledger check ─► atomic commit per hospital
 */
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, statSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { CpuAccount, type CpuTotals } from './cpu.js';
import { PipelineError } from './errors.js';
import { committed, onInterrupt, partlyCommitted } from './lifecycle.js';
import type { Logger } from './log.js';
import { DuplicateFilter, filterBits } from './merge/dedupe.js';
import { Dictionaries } from './merge/dicts.js';
import { HeldRows } from './merge/held.js';
import { type Partition, Partitions } from './merge/partitions.js';
import { BufferRecycler, freeNow, resultBuffers } from './merge/recycle.js';
import { planCuts, planCutsAt } from './parse/cutter.js';
import { extrasWarning, parseHeader, type Header } from './parse/header.js';
import { parsedRecordEnd, parseRecords } from './parse/csv.js';
import type { Pool } from './pool.js';
import { COLUMNS, type Dataset, MEASURES } from './registry.js';
import { commitHospital, type PendingCommit, pendingPath, writeInputManifest, type HospitalOutcome } from './sinks/commit.js';
import { faultPoint, makeOutputDir, readFully, removeIfEmpty, restoreReplaced, writeJsonAtomic } from './sinks/fsutil.js';
import { QuarantineFile } from './sinks/quarantine.js';
import { LineMap } from './sinks/linemap.js';
import { acquireLock, type Lock } from './sinks/lock.js';
import type { ChunkContext, ChunkResult } from './types.js';
import type { PipelineMetrics } from './metrics/index.js';

export interface ProcessConfig {
  readonly dataset: Dataset;
  readonly input: string;
  readonly out: string;
  readonly chunkSize: number;
  readonly maxRecordBytes: number;
  readonly rowGroupRows: number;
  readonly maxBufferedRows: number;
  readonly dedupeFilterBits: number | null;
  readonly asOfDay: number;
  readonly period: string | null;
  readonly periodBounds: { first: number; last: number } | null;
  readonly key: string;
  readonly keyIsDemo: boolean;
  readonly progress: boolean;
  /** Called once the file has passed its checks, just before its first commit changes the output (`run` drops `_SUCCESS` there). */
  readonly beforeCommit?: () => void;
  /** The file's partition lock (see partitionLock), when the caller took it beforehand: used, not released. */
  readonly lock?: Lock;
}

export interface ProcessSummary {
  dataset: Dataset;
  input: string;
  scope: string;
  rows: { read: number; accepted: number; rejected: number };
  blankLines: number;
  bytes: number;
  hospitals: HospitalOutcome[];
  rejectsByRule: Record<string, number>;
  warnings: string[];
  timings: Record<string, number>;
  /**
   * Wall time of the file's phases, one after the other, adding up to the
   * whole: chunks (set-up, then the file read, split and checked by the
   * workers, applied in order), duplicates (held suspects decided), encode
   * (the row groups still waiting, encoded and written), commit (quarantine
   * files closed, ledger checked, files moved into place, manifests). A file
   * without rows spends it all in chunks and commit.
   */
  phases: { chunks: number; duplicates: number; encode: number; commit: number };
  /** CPU by thread (src/cpu.ts); null where the system does not report thread times. */
  cpu: CpuTotals | null;
  durationMs: number;
}


interface HospitalAcc {
  read: number;
  rejected: number;
  rejectsByRule: Record<string, number>;
  quarantine: QuarantineFile | null;
  /** Non-empty required cells of its rows the rules rejected (as the chunks' `filled`). */
  rejectedFilled: number[];
  /** Its rows the rules accepted (duplicates found later included): every required cell filled, but a defaulted reference range. */
  ruleAccepted: number;
  defaultedRanges: number;
}

/** Reads the first bytes of a file: enough to hold the header record. */
function readHead(fd: number, size: number): Buffer {
  const head = Buffer.alloc(Math.min(size, 1 << 20));
  return head.subarray(0, readFully(fd, head, 0, head.length, 0));
}

/** The lock name of an input: its hospital when the file is a partition file, else a hash of its path. */
function partitionName(input: string): string {
  const m = /^hospital_id=([A-Za-z0-9_-]{1,32})\.csv$/.exec(basename(input));
  if (m) return m[1];
  return createHash('sha256').update(realpathSync(input)).digest('hex').slice(0, 16);
}

/** The name of a partition's lock (`DIR/_locks/<name>.lock`) and of its runs' staging directories (`DIR/_staging/<name>-<uuid>`). */
const lockName = (dataset: Dataset, scope: string, input: string) => `${dataset}.${scope}.${partitionName(input)}`;

/**
 * Takes the lock of the partition a `process` of `input` writes (`DIR/_locks/<dataset>.<scope>.<partition>.lock`):
 * exit 2 HCP_ERR_LOCKED while another run holds it.
 */
export function partitionLock(out: string, dataset: Dataset, scope: string, input: string): Lock {
  makeOutputDir(out, 'out');
  return acquireLock(join(out, '_locks', `${lockName(dataset, scope, input)}.lock`), `${dataset} partition of ${input}`);
}

/**
 * Clears what killed runs of this partition left (SIGKILL, a lost machine: no handler ran) in their staging
 * directories (`DIR/_staging/<own>-<uuid>`): the caller holds the partition's lock, so none of them is in use.
 * What a killed commit had moved aside with no replacement in place is put back first (`restoreReplaced`).
 * Other partitions' staging is never touched: whether their lock's owner lives cannot be told from here when
 * it runs on another host or in another container's pid namespace (a shared output directory); their own
 * next run clears them.
 */
function sweepStaging(out: string, own: string, log: Logger): void {
  const dir = join(out, '_staging');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^(.+)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.exec(name);
    if (!m || m[1] !== own) continue;
    try {
      for (const target of restoreReplaced(join(dir, name, 'replaced'))) log.warn(`restored ${target}, which a killed run had moved aside`);
      rmSync(join(dir, name), { recursive: true, force: true });
    } catch {
      /* best effort: a leftover is garbage, not a reason to fail this run */
    }
  }
}

/** Checks the input is a readable regular file and reads its header (SPEC §1). */
export function preflight(dataset: Dataset, input: string): { header: Header | null; size: number } {
  let st;
  try {
    st = statSync(input);
  } catch {
    throw new PipelineError('HCP_ERR_INPUT_MISSING', `Input file not found: ${input}`, { file: input });
  }
  if (st.isDirectory()) throw new PipelineError('HCP_ERR_INPUT_UNREADABLE', `Input is a directory, not a CSV file: ${input}`, { file: input });
  // The reads stop at the size stat gives, 0 for a pipe or a device (/dev/zero passed as an empty file),
  // and opening a named pipe with no writer blocks where no signal handler can run.
  if (!st.isFile()) throw new PipelineError('HCP_ERR_INPUT_UNREADABLE', `Input is not a regular file: ${input}`, { file: input });
  let fd: number;
  try {
    fd = openSync(input, 'r');
  } catch (e) {
    throw new PipelineError('HCP_ERR_INPUT_UNREADABLE', `Input file cannot be read: ${(e as Error).message}`, { file: input });
  }
  try {
    // Every read stops at the size stat gave: a file whose size reads 0 yet has bytes (procfs, some FUSE file systems)
    // would pass as an empty file, zero rows, its content never read.
    if (st.size === 0 && readFully(fd, Buffer.alloc(1), 0, 1, 0) > 0) {
      throw new PipelineError('HCP_ERR_INPUT_UNREADABLE', `Input's size reads 0 but it has content (a /proc or pseudo file?): ${input}`, { file: input });
    }
    const head = readHead(fd, st.size);
    return { header: parseHeader(dataset, head, input, head.length >= st.size), size: st.size };
  } catch (e) {
    // A read that fails (EIO, EINVAL: /proc/self/mem) is the input's fault, not an internal error.
    if (e instanceof PipelineError) throw e;
    throw new PipelineError('HCP_ERR_INPUT_UNREADABLE', `Input file cannot be read: ${(e as Error).message}`, { file: input });
  } finally {
    closeSync(fd);
  }
}

export async function processFile(cfg: ProcessConfig, pool: Pool, log: Logger, metrics: PipelineMetrics | null): Promise<ProcessSummary> {
  const started = performance.now();
  const cpu = new CpuAccount();
  const { dataset, input, out } = cfg;
  const { header, size } = preflight(dataset, input);
  const scope = cfg.period ?? 'all';
  // Ties this run's hospital entries to its input manifest, whatever path the input had before.
  const run = randomUUID();
  const warnings: string[] = [];
  if (!header) warnings.push(`${input}: empty file (no header, zero rows)`);
  else if (size <= header.dataOffset) warnings.push(`${input}: header only (zero rows)`);
  // Not exclusive with "header only": the header is what is wrong, rows or not.
  const extras = header && extrasWarning(header);
  if (extras) warnings.push(`${input}: ${extras}`);

  const lock = cfg.lock ?? partitionLock(out, dataset, scope, input);
  const name = lockName(dataset, scope, input);
  sweepStaging(out, name, log);
  faultPoint('swept');
  const staging = join(out, '_staging', `${name}-${randomUUID()}`);
  mkdirSync(staging, { recursive: true });
  /** Drops staging and the lock, on every way out. */
  const cleanup = () => {
    forget();
    rmSync(staging, { recursive: true, force: true });
    if (!cfg.lock) lock.release();
    faultPoint('unlocked');
    removeIfEmpty(join(out, '_staging'));
    removeIfEmpty(join(out, '_locks'));
  };
  const forget = onInterrupt(cleanup);
  // A split file from `partition` names, in rejects.csv, the combined file and its lines (src/sinks/linemap.ts).
  const lineMap = header && size > header.dataOffset ? LineMap.open(input, size, (w) => warnings.push(w)) : null;
  // Sized for the file (about 50 bytes a row).
  const dicts = new Dictionaries(Math.ceil(size / 50));
  const partitions = new Partitions(dataset, pool, dicts, join(staging, 'curated'), join(staging, 'spill'), cfg.rowGroupRows, cfg.maxBufferedRows, pool.threads * 2, cpu);
  const hospitals = new Map<string, HospitalAcc>();
  const rejectsByRule: Record<string, number> = {};
  const filled = new Array<number>(COLUMNS[dataset].length).fill(0);
  const timings: Record<string, number> = { read: 0, parse: 0, rules: 0, transform: 0, dedupe: 0, quarantine: 0 };
  let rowsRead = 0;
  let blankLines = 0;
  // The preflight read the header (BOM included) from the input: counted here, and the chunks count the rest,
  // so a full pass counts every byte of the file once. A file without a header (empty, a lone BOM) is all head.
  let bytesRead = header ? header.dataOffset : size;
  metrics?.addBytesRead(dataset, bytesRead);
  // Every data byte of the file must be dispatched and come back parsed: the
  // row ledger alone cannot see a chunk that was never parsed.
  let dispatchedBytes = 0;
  let parsedBytes = 0;

  const hospitalAcc = (h: string): HospitalAcc => {
    let a = hospitals.get(h);
    if (!a) hospitals.set(h, (a = { read: 0, rejected: 0, rejectsByRule: {}, quarantine: null, rejectedFilled: new Array<number>(filled.length).fill(0), ruleAccepted: 0, defaultedRanges: 0 }));
    return a;
  };
  const quarantine = (h: string): QuarantineFile => {
    const a = hospitalAcc(h);
    a.quarantine ??= new QuarantineFile(
      join(staging, 'quarantine', `hospital_id=${h}`, scope === 'all' ? 'rejects.csv' : `rejects-${scope}.csv`),
      lineMap?.sourceFile ?? input,
      header!.names,
    );
    return a.quarantine;
  };

  /** Closes every quarantine file; when the run is failing anyway, a write that fails again must not stop its cleanup. */
  const closeQuarantines = (failing: boolean) => {
    for (const a of hospitals.values()) {
      try {
        a.quarantine?.close();
      } catch (e) {
        if (!failing) throw e;
      }
    }
  };
  /** A failed run's last steps, whatever phase it failed in: its files closed, its staging and lock gone. */
  const abandon = () => {
    closeQuarantines(true);
    lineMap?.close();
    cleanup();
  };

  /** When each phase ended (see ProcessSummary.phases); for a file without rows, chunks and duplicates end together. */
  const phaseAt = { chunks: 0, duplicates: 0, encode: 0 };
  let dups: DuplicateFilter | null = null;
  /** Rows the duplicate filter held back, in arrival order. */
  const held = new HeldRows<Partition>();
  try {
    if (header && size > header.dataOffset) {
      const ctx: ChunkContext = {
        dataset,
        index: header.index,
        columnCount: header.names.length,
        asOfDay: cfg.asOfDay,
        period: cfg.periodBounds,
        key: cfg.key,
        run: randomUUID(),
      };
      const firstLine = header.lines + 1;
      // Sized for the file (about 50 bytes a row), within a fixed bound, unless the tests force a size.
      dups = new DuplicateFilter(cfg.dedupeFilterBits ?? filterBits((size - header.dataOffset) / 50), join(staging, 'fingerprints.bin'));
      const filter = dups;
      let lineBase = 0;
      const inFlight: Promise<ChunkResult>[] = [];
      const maxInFlight = pool.threads * 2;
      // Buffers that go round (src/merge/recycle.ts): a chunk's bytes and its result's columns come back
      // with the result; the next read reuses the first, the next chunk's worker the second.
      const chunkBuffers = new BufferRecycler(maxInFlight + 1);
      const columnBuffers = new BufferRecycler(maxInFlight + 1);
      // Room for the partial record carried over from the previous read, so every chunk buffer has one size.
      const chunkCapacity = cfg.chunkSize + (64 << 10);
      let seq = 0;

      /** Applies one chunk's result, in order: line numbers, dictionaries, dedupe, quarantine, partitions. */
      const apply = async (r: ChunkResult) => {
        const t0 = performance.now();
        cpu.add(r.cpu);
        rowsRead += r.rows;
        parsedBytes += r.bytes.byteLength;
        blankLines += r.blankLines;
        for (let i = 0; i < filled.length; i++) filled[i] += r.filled[i];
        timings.parse += r.timings.parse;
        timings.rules += r.timings.rules;
        timings.transform += r.timings.transform;
        // The worker's own time on the chunk (its stage timings add up to it). Timed from dispatch, it
        // would also hold the wait in the pool's queue (up to 2 × threads chunks in flight) and a failed attempt.
        metrics?.observeChunkDuration((r.timings.parse + r.timings.rules + r.timings.transform) / 1000);
        const base = firstLine + lineBase;
        // The records of this chunk start before line base + r.lines, unless its last one ends the file without a LF.
        lineMap?.window(r.bytes.byteLength > 0 && r.bytes[r.bytes.byteLength - 1] !== 0x0a ? Infinity : base + r.lines - 1);
        const at = lineMap ? (l: number) => lineMap!.get(l) : (l: number) => l;
        const rj = r.rejects;
        const files = rj.hospitals.map(quarantine);
        rj.filled.forEach((f, h) => {
          const into = hospitalAcc(rj.hospitals[h]).rejectedFilled;
          for (let i = 0; i < f.length; i++) into[i] += f[i];
        });
        const cells = Buffer.from(rj.cells.buffer, rj.cells.byteOffset, rj.cells.byteLength);
        // Rows per (hospital, code set), counted by rule after the loop, in
        // order of first appearance (the order the counts' keys are reported in).
        const sets = rj.codeSets.length;
        const perSet = new Uint32Array(rj.hospitals.length * sets);
        const seen: number[] = [];
        for (let i = 0; i < rj.line.length; i++) {
          const h = rj.hospital[i];
          const k = h * sets + rj.codes[i];
          if (perSet[k]++ === 0) seen.push(k);
          files[h].addCellBytes(at(base + rj.line[i]), cells, i === 0 ? 0 : rj.cellEnds[i - 1], rj.cellEnds[i]);
        }
        for (const k of seen) {
          const n = perSet[k];
          const a = hospitalAcc(rj.hospitals[Math.floor(k / sets)]);
          a.read += n;
          a.rejected += n;
          for (const code of rj.codeSets[k % sets].split(';')) {
            a.rejectsByRule[code] = (a.rejectsByRule[code] ?? 0) + n;
            rejectsByRule[code] = (rejectsByRule[code] ?? 0) + n;
          }
        }
        const t1 = performance.now();
        timings.quarantine += t1 - t0;
        // The chunk's new patients and source values get their ids before its rows are kept.
        const ids = { patients: dicts.publishPatients(r.newPatients), values: dicts.publishValues(r.newValues) };
        timings.transform += performance.now() - t1;
        const chunk = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
        const unitMap = partitions.units.map(r.units);
        for (let p = 0; p < r.parts.length; p++) {
          const from = r.partStart[p];
          const to = r.partStart[p + 1];
          const part = partitions.partitionOf(r, p);
          const hospital = r.parts[p].hospital;
          const td = performance.now();
          // Suspects (maybe later copies of accepted rows) are held back until the filter decides.
          const suspects: number[] = [];
          filter.scan(r.fp, from, to, suspects);
          for (const i of suspects) {
            const k = partitions.hold(part, r, i, ids, unitMap);
            held.push(part, k, at(base + r.pos[2 * i + 1]), recordAt(chunk, r.pos[2 * i]));
          }
          const drop = suspects.length > 0 ? suspects : null;
          const acc = hospitalAcc(hospital);
          acc.read += to - from;
          acc.ruleAccepted += to - from;
          acc.defaultedRanges += r.parts[p].defaulted;
          timings.dedupe += performance.now() - td;
          const full = partitions.add(part, r, from, to, drop, ids, unitMap);
          if (full) await full;
        }
        lineBase += r.lines;
        const chunkBuffer = r.bytes.buffer as ArrayBuffer;
        const columnBuffer = r.value.buffer as ArrayBuffer;
        // Everything else the result brought (rejects, new dictionary entries) was copied where it is kept: freed now,
        // so that the worker's malloc arena it came from does not grow while this thread waits for a collection.
        freeNow(resultBuffers(r).filter((b) => b !== chunkBuffer && b !== columnBuffer));
        chunkBuffers.give([chunkBuffer]);
        columnBuffers.give([columnBuffer]);
        // Pool gauges at most once a second: piscina's utilization summarises a histogram on every read.
        if (metrics && performance.now() - gaugesAt >= 1000) updateGauges();
      };
      let gaugesAt = -Infinity;
      const updateGauges = () => {
        gaugesAt = performance.now();
        metrics?.setPoolQueueSize(pool.queueSize);
        metrics?.setPoolUtilization(pool.utilization);
      };

      const dispatch = (fileOffset: number, bytes: Buffer) => {
        const mySeq = seq++;
        // Read the length now: once transferred, the buffer is detached and reads as empty.
        const length = bytes.length;
        dispatchedBytes += length;
        let fresh: Buffer | null = bytes;
        const p = pool.run<ChunkResult>((attempt) => {
          // The first attempt transfers the bytes we read; a retry re-reads them.
          const data = fresh ?? rereadRange(input, fileOffset, length);
          fresh = null;
          const own = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          const spare = columnBuffers.takeAny();
          const transfer = [own.buffer as ArrayBuffer, ...(spare ? [spare] : [])];
          return { task: { kind: 'chunk', seq: mySeq, attempt, ctx, dicts: dicts.state, bytes: own, spare }, transfer };
        });
        // Awaited in order, later (apply): until then a failed chunk's rejection must count as handled,
        // or Node ends the process on it (unhandled rejection) before the run can fail cleanly.
        p.catch(() => {});
        inFlight.push(p);
      };

      const fd = openSync(input, 'r');
      try {
        let pending: Buffer = Buffer.alloc(0);
        let pendingOffset = header.dataOffset; // file offset of pending[0]
        let pos = header.dataOffset;
        // A split file is cut into the records partition wrote: where the input's reading gave up on one, and
        // nowhere inside one, however long (src/sinks/linemap.ts).
        const forcedCuts = lineMap?.cuts ?? [];
        let forced = 0;
        const maxRecordBytes = lineMap ? Math.max(cfg.maxRecordBytes, lineMap.longest) : cfg.maxRecordBytes;
        const progress = cfg.progress ? progressMeter(size, log) : null;
        for (;;) {
          const tr = performance.now();
          // Pending tail + new bytes, in a buffer of its own: it will be transferred, and reused when it comes back.
          // A record longer than a chunk is read in steps as long as what is pending, not a chunk at a time: each
          // read scans and copies the whole pending record, and a 50 MB line at 1 KiB a read never ended.
          const step = Math.max(cfg.chunkSize, pending.length);
          const need = pending.length + step;
          const buf = Buffer.from(chunkBuffers.take(Uint8Array, Math.max(need, chunkCapacity)).buffer, 0, need);
          pending.copy(buf, 0);
          const got = readFully(fd, buf, pending.length, step, pos);
          pos += got;
          timings.read += performance.now() - tr;
          bytesRead += got;
          metrics?.addBytesRead(dataset, got);
          const len = pending.length + got;
          const atEof = pos >= size || got === 0;
          const ends: number[] = [];
          while (forced < forcedCuts.length && forcedCuts[forced] <= pendingOffset + len) ends.push(forcedCuts[forced++] - pendingOffset);
          const { cuts, consumed } = ends.length > 0 ? planCutsAt(buf, len, atEof, maxRecordBytes, ends) : planCuts(buf, len, atEof, maxRecordBytes);
          // Keep the partial record first: dispatching transfers (detaches) buf.
          const tail = Buffer.from(buf.subarray(consumed, len));
          let from = 0;
          for (const cut of cuts) {
            while (inFlight.length >= maxInFlight) await apply(await inFlight.shift()!);
            // Each piece gets its own buffer so it can be transferred alone.
            const piece = cuts.length === 1 && from === 0 ? buf.subarray(0, cut) : Buffer.from(buf.subarray(from, cut));
            dispatch(pendingOffset + from, piece);
            from = cut;
          }
          pending = tail;
          pendingOffset += consumed;
          progress?.(pos, rowsRead);
          if (atEof) break;
        }
        while (inFlight.length > 0) await apply(await inFlight.shift()!);
        phaseAt.chunks = performance.now();
        // No chunk is read or checked again: the buffers that went round are freed now, not at the next
        // full garbage collection, so they are not still resident when the encode phase peaks.
        chunkBuffers.clear();
        columnBuffers.clear();
        updateGauges();
        progress?.(size, rowsRead, true);
      } finally {
        closeSync(fd);
      }
      // The held rows: duplicates to quarantine (as read), the others back to their partitions.
      const td = performance.now();
      const isDup = filter.resolve();
      /** Per partition with held rows: the indices of the held rows that are duplicates. */
      const drops = new Map<Partition, number[]>();
      for (let s = 0; s < held.length; s++) {
        const { part, index: k, line, record } = held.get(s);
        let drop = drops.get(part);
        if (!drop) drops.set(part, (drop = []));
        if (isDup[s] === 0) continue;
        drop.push(k);
        const a = hospitalAcc(part.hospital);
        a.rejected++;
        a.rejectsByRule['duplicate.exact'] = (a.rejectsByRule['duplicate.exact'] ?? 0) + 1;
        rejectsByRule['duplicate.exact'] = (rejectsByRule['duplicate.exact'] ?? 0) + 1;
        quarantine(part.hospital).add(line, 'duplicate.exact', recordFields(record), '');
      }
      for (const [part, drop] of drops) await partitions.release(part, drop);
      filter.close();
      dups = null;
      timings.dedupe += performance.now() - td;
    }
    phaseAt.duplicates = performance.now();
    phaseAt.chunks ||= phaseAt.duplicates; // a file without rows had no chunks to wait for
    await partitions.finish();
    phaseAt.encode = performance.now();
  } catch (e) {
    dups?.close();
    await partitions.abandon();
    abandon();
    throw e;
  }

  try {
    // Every hospital gets a rejects.csv, even an empty one (header only).
    if (header) for (const h of hospitals.keys()) quarantine(h);
    closeQuarantines(false);
  } catch (e) {
    // A write that fails here (a full disk) fails the run like one during the chunks: staging and lock go.
    abandon();
    throw e;
  }
  // Ledger: rows read = curated + rejected, from independent counters.
  let curated = 0;
  const curatedByHospital = new Map<string, number>();
  const bpByHospital = new Map<string, { pairs: number; violations: number }>();
  for (const e of partitions.entries()) {
    curated += e.rows;
    curatedByHospital.set(e.hospital, (curatedByHospital.get(e.hospital) ?? 0) + e.rows);
    const bp = bpByHospital.get(e.hospital) ?? { pairs: 0, violations: 0 };
    bp.pairs += e.bpPairs;
    bp.violations += e.bpViolations;
    bpByHospital.set(e.hospital, bp);
  }
  let rejected = 0;
  for (const a of hospitals.values()) rejected += a.quarantine?.rows ?? 0;
  // A split file holds the records partition wrote into it, or its rejects would point to the wrong lines.
  try {
    lineMap?.finish(rowsRead);
  } catch (e) {
    cleanup();
    throw e;
  } finally {
    lineMap?.close();
  }
  const dataBytes = header ? Math.max(0, size - header.dataOffset) : 0;
  if (dispatchedBytes !== dataBytes || parsedBytes !== dataBytes) {
    cleanup();
    throw new PipelineError('HCP_ERR_LEDGER', `Byte ledger mismatch for ${input}: ${dataBytes} data bytes, ${dispatchedBytes} dispatched, ${parsedBytes} parsed`, { file: input });
  }
  if (rowsRead !== curated + rejected) {
    cleanup();
    throw new PipelineError('HCP_ERR_LEDGER', `Ledger mismatch for ${input}: read ${rowsRead} != curated ${curated} + rejected ${rejected}`, { file: input });
  }

  // The report-level checks, for the whole file and for each hospital's rows of it (the hospitals' add up to the file's).
  const columns = COLUMNS[dataset];
  const completeness = (n: number, filledOf: (i: number) => number) => Object.fromEntries(columns.map((c, i) => [c, n === 0 ? null : filledOf(i) / n]));
  let bpPairs = 0;
  let bpViolations = 0;
  for (const bp of bpByHospital.values()) {
    bpPairs += bp.pairs;
    bpViolations += bp.violations;
  }
  let defaultedRanges = 0;
  for (const a of hospitals.values()) defaultedRanges += a.defaultedRanges;
  const file = { completeness: completeness(rowsRead, (i) => filled[i]), defaultedReferenceRanges: defaultedRanges, bpPairs, bpViolations, blankLines, warnings };
  const hospitalFacts = (h: string, a: HospitalAcc) => {
    // An accepted row has every required cell filled but a defaulted (empty) reference range.
    const filledOf = (i: number) => a.rejectedFilled[i] + a.ruleAccepted - (columns[i] === 'reference_range' ? a.defaultedRanges : 0);
    const bp = bpByHospital.get(h) ?? { pairs: 0, violations: 0 };
    return { completeness: completeness(a.read, filledOf), defaultedReferenceRanges: a.defaultedRanges, bpPairs: bp.pairs, bpViolations: bp.violations };
  };

  const tc = performance.now();
  const pending = pendingPath(out, dataset, scope, partitionName(input));
  const outcomes: HospitalOutcome[] = [];
  try {
    // Every hospital's ledger holds before anything is committed (or `_SUCCESS` dropped).
    for (const [h, a] of hospitals) {
      if (a.read !== (curatedByHospital.get(h) ?? 0) + a.rejected) throw new PipelineError('HCP_ERR_LEDGER', `Ledger mismatch for hospital ${h} in ${input}`, { file: input });
    }
    cfg.beforeCommit?.();
    // Until the input manifest is written, the hospitals' commits are under way (see PendingCommit).
    writeJsonAtomic(pending, { input, run, scope, hospitals: [...hospitals.keys()].sort() } satisfies PendingCommit, staging);
    for (const [k, h] of [...hospitals.keys()].sort().entries()) {
      const a = hospitals.get(h)!;
      const accepted = curatedByHospital.get(h) ?? 0;
      outcomes.push(
        await commitHospital({
          out,
          staging,
          dataset,
          hospital: h,
          scope,
          input,
          run,
          counts: { read: a.read, accepted, rejected: a.rejected },
          rejectsByRule: a.rejectsByRule,
          months: [...partitions.entries()].filter((e) => e.hospital === h),
          measures: MEASURES[dataset].map((m) => m.name),
          keyIsDemo: cfg.keyIsDemo,
          file,
          hospitalFacts: hospitalFacts(h, a),
        }),
      );
      faultPoint('between-hospitals');
      // An interrupt now (a commit lock waited for lets the event loop turn) leaves the output mixed: say so.
      if (k + 1 < hospitals.size) partlyCommitted(dataset, `${k + 1} of ${hospitals.size} hospitals committed, the others not: run it again`);
      metrics?.addRows(dataset, h, 'accepted', accepted);
      metrics?.addRows(dataset, h, 'rejected', a.rejected);
      for (const [rule, n] of Object.entries(a.rejectsByRule)) metrics?.addRejectedByRule(dataset, rule, n, h);
    }
    // A record of the input itself, so the report can mention files that had no hospital at all; then the commit
    // is complete. Both under the lock: released first, a rerun of this partition could write its own pending
    // marker in between, and this run would remove it.
    writeInputManifest(out, dataset, scope, partitionName(input), {
      input,
      run,
      scope,
      committed_at: new Date().toISOString(),
      rows: { read: rowsRead, accepted: curated, rejected },
      blank_lines: blankLines,
      hospitals: outcomes.map((o) => o.hospital_id),
      warnings,
    });
    rmSync(pending, { force: true });
    removeIfEmpty(dirname(pending));
    committed(dataset);
  } finally {
    cleanup();
  }
  const commitMs = performance.now() - tc;
  const ended = performance.now();

  const pt = partitions.timings;
  return {
    dataset,
    input,
    scope,
    rows: { read: rowsRead, accepted: curated, rejected },
    blankLines,
    bytes: bytesRead,
    hospitals: outcomes,
    rejectsByRule,
    warnings,
    timings: {
      read: round(timings.read),
      parse: round(timings.parse),
      rules: round(timings.rules),
      transform: round(timings.transform),
      dedupe: round(timings.dedupe),
      sketch: round(pt.sketch),
      parquet_encode: round(pt.parquet_encode),
      write: round(pt.write + timings.quarantine + commitMs),
    },
    phases: {
      chunks: round(phaseAt.chunks - started),
      duplicates: round(phaseAt.duplicates - phaseAt.chunks),
      encode: round(phaseAt.encode - phaseAt.duplicates),
      commit: round(ended - phaseAt.encode),
    },
    cpu: cpu.totals(),
    durationMs: round(ended - started),
  };
}

/** Removes a directory only if it is empty (another run may be using it). */
const round = (ms: number) => Math.round(ms * 10) / 10;

/** The record starting at byte `pos` of a chunk (a view). */
function recordAt(chunk: Buffer, pos: number): Buffer {
  return chunk.subarray(pos, parsedRecordEnd(chunk, pos, chunk.length));
}

/** The fields of a record, as read (for the quarantine file). */
function recordFields(record: Buffer): string[] {
  let fields: string[] = [];
  parseRecords(record, 0, record.length, (rec) => (fields = rec.fields.slice()));
  return fields;
}

function rereadRange(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.allocUnsafeSlow(length);
    readFully(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** A one-line progress meter on stderr: bytes done, rows/s, ETA. */
function progressMeter(total: number, log: Logger): (done: number, rows: number, final?: boolean) => void {
  const start = performance.now();
  let last = 0;
  return (done, rows, final) => {
    const now = performance.now();
    if (!final && now - last < 500) return;
    last = now;
    const s = (now - start) / 1000;
    const rate = rows / Math.max(s, 1e-3);
    const eta = done > 0 ? ((total - done) * s) / done : 0;
    const line = `${((100 * done) / Math.max(total, 1)).toFixed(1)}% ${(done / 1048576).toFixed(0)}/${(total / 1048576).toFixed(0)} MiB, ${Math.round(rate).toLocaleString('en')} rows/s, ETA ${eta.toFixed(0)}s`;
    process.stderr.write(`\r${line}${final ? '\n' : ''}`);
    void log;
  };
}
