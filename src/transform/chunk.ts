/**
 * One chunk, start to finish: split its records, apply every row rule,
 * transform accepted rows (units, flags, patient key) and hand them back
 * column-wise, grouped by (hospital, month). All the per-row work of a run
 * happens here, in the workers.
 *
 * Two paths, one contract:
 * - the fast path reads a plain record straight from the bytes (fields
 *   unquoted or simply quoted, well-formed UTF-8 such as a °C unit) and
 *   accepts it only when every rule passes, with byte-level checks
 *   (src/rules/bytes.ts) and interned fields (a field's bytes are looked
 *   up, never turned into a string);
 * - everything else — a rule failing, odd quoting, malformed UTF-8, a field
 *   that may start or end in non-ASCII whitespace, a wrong field count —
 *   takes the string path: the parser (src/parse/csv.ts) and
 *   `checkRow` decide, exactly as they always did, and produce the
 *   quarantine entry with every failed rule. The fast path never rejects.
 *
 * Patient keys and source values are looked up in the dictionaries the
 * coordinator shares (src/transform/bytetable.ts); what is not there yet is
 * keyed here (HMAC in JS, src/transform/sha256.ts), cached, and sent back as
 * the chunk's new entries.
 */
import { parsedRecordEnd, parseRecords, Problem } from '../parse/csv.js';
import { type Convert, MEASURES } from '../registry.js';
import { isIdBytes, isTrimByte, mayEndInUnicodeSpace, parseDateBytes, parseDecimalBytes, utf8SequenceLength } from '../rules/bytes.js';
import type { RowIssue } from '../rules/codes.js';
import { FLAG_H, FLAG_L, FLAG_N, FLAG_NONE, INVALID_HOSPITAL, isValidHospitalId, parseRefRange, type RefRange } from '../rules/fields.js';
import { checkRow, type CheckedRow, emptyCheckedRow, ruleContext, type RuleContext } from '../rules/row.js';
import { type ChunkContext, type ChunkResult, PENDING, type SharedDicts } from '../types.js';
import { ByteTable, hash64, hashBytes, type TableState } from './bytetable.js';
import { dayHash, EMPTY_HASH, fingerprint } from './fingerprint.js';
import { AcceptedRows, ChunkRefs } from './output.js';
import { hmacSha256, type Hmac } from './sha256.js';
import { RejectList, rejectCells } from '../sinks/quarantine.js';

const LF = 10;
const CR = 13;
const QUOTE = 34;
const COMMA = 44;
const PIPE = 124;
/** Bytes that end an unquoted field's fast scan: comma, LF, quote, non-ASCII (then checked as UTF-8). */
const STOP = Uint8Array.from({ length: 256 }, (_, c) => (c === COMMA || c === LF || c === QUOTE || c >= 0x80 ? 1 : 0));
/** Bytes that end a quoted field's fast scan: quote, LF, CR, non-ASCII (then checked as UTF-8). */
const QSTOP = Uint8Array.from({ length: 256 }, (_, c) => (c === QUOTE || c === LF || c === CR || c >= 0x80 ? 1 : 0));

/**
 * The fast path's field scan: from `i`, the first byte `stop` marks that is
 * not part of a well-formed UTF-8 character (a °C unit stays in its field),
 * or `end`. A malformed byte (>= 0x80) stops it, for the string path.
 */
function scanTo(b: Uint8Array, i: number, end: number, stop: Uint8Array): number {
  for (;;) {
    while (i < end && stop[b[i]] === 0) i++;
    const n = i < end && b[i] >= 0x80 ? utf8SequenceLength(b, i, end) : 0;
    if (n === 0) return i;
    i += n;
  }
}

/**
 * The codes of a record that cannot be checked field by field, in catalogue
 * order (src/rules/codes.ts): each of its parse problems and a wrong field
 * count (SPEC §2: every rule it fails). An unterminated quote runs to the end
 * of the region, so its field count says nothing and is not reported with it.
 * Indexed by `problem * 2 + (countOk ? 1 : 0)`: built once, no work per row.
 */
const RECORD_CODES: readonly string[] = Array.from({ length: 16 }, (_, k) => {
  const problem = k >> 1;
  const countOk = (k & 1) === 1;
  const codes: string[] = [];
  if (problem & Problem.InvalidUtf8) codes.push('row.invalid_utf8');
  if (!countOk && !(problem & Problem.UnterminatedQuote)) codes.push('row.field_count');
  if (problem & Problem.UnterminatedQuote) codes.push('row.unterminated_quote');
  if (problem & Problem.BadQuote) codes.push('row.bad_quote');
  return codes.join(';');
});

function recordCodes(countOk: boolean, problem: Problem): string {
  return RECORD_CODES[problem * 2 + (countOk ? 1 : 0)];
}

/** Worker-local caches grow with distinct values; past this many entries they start over. */
const CACHE_LIMIT = 1 << 15;

/**
 * Interns a field in a worker-local table whose payload is the field's
 * 64-bit hash (2 words an entry), hashing it when it is new; `t.isNew`
 * says whether it was.
 */
function internField(t: ByteTable, b: Uint8Array, s: number, e: number): number {
  const id = t.internCached(b, s, e);
  if (t.isNew) hash64(b, s, e, t.payload, 2 * id);
  return id;
}

/** L below the range, H above it, else N; open bounds are NaN; a value on a strict bound is outside. */
function flagOf(v: number, lo: number, hi: number, loIncl: boolean, hiIncl: boolean): number {
  if (lo === lo && (v < lo || (!loIncl && v === lo))) return FLAG_L;
  if (hi === hi && (v > hi || (!hiIncl && v === hi))) return FLAG_H;
  return FLAG_N;
}

/** Per-file state a worker keeps between chunks: rule tables, interned fields, caches. */
export class ChunkProcessor {
  private readonly labs: boolean;
  private readonly rules: RuleContext;
  private readonly hmac: Hmac;
  private readonly nReq: number;
  private readonly idx: Int32Array;
  private readonly nMeasures: number;
  private readonly plausibleLo: Float64Array;
  private readonly plausibleHi: Float64Array;
  private readonly normalLo: Float64Array;
  private readonly normalHi: Float64Array;
  private readonly hasNormal: Uint8Array;

  // Interned fields (worker-local ids) and what each means.
  private readonly hospitals = new ByteTable(2);
  private readonly hospitalName: string[] = [];
  private readonly hospitalOk: boolean[] = [];
  private readonly types = new ByteTable(2);
  private readonly typeMeasure: number[] = [];
  private readonly units = new ByteTable(2);
  private readonly unitName: string[] = [];
  /** Per (unit id × measure): 0 not looked up, −1 not allowed, k + 1 = converters[k]. */
  private unitConv = new Int32Array(64);
  private readonly converters: Convert[] = [];
  private readonly ranges = new ByteTable(2);
  private readonly rangeOf: (RefRange | null)[] = [];

  // The coordinator's shared dictionaries, and entries keyed here that are not in them yet.
  private sharedPatients: ByteTable | null = null;
  private sharedValues: ByteTable | null = null;
  private readonly patientCache = new ByteTable(4);
  private readonly valueCache = new ByteTable(0);
  /** Source values seen here: [shared id + 1 (0 = not published yet), hash64 words]. */
  private readonly knownValues = new ByteTable(3);
  private readonly newPatients = new ChunkRefs();
  private readonly newValues = new ChunkRefs();

  // Per-chunk scratch.
  private readonly out: AcceptedRows;
  /** Per field of the current row: its trimmed byte range; room for at least the header's fields (see the constructor). */
  private readonly bounds: Int32Array;
  /** Per field of the current row: its 64-bit hash (fingerprint input). */
  private readonly comp: Uint32Array;
  /** Per file column: which required column it is (COLUMNS order), or −1 for an extra. */
  private readonly colOf: Int32Array;
  private lastTypeId = 0;
  private lastRangeId = 0;
  /** 64-bit hash of the current row's patient_id and source value. */
  private readonly patientHash = new Uint32Array(2);
  private readonly valueHash = new Uint32Array(2);
  private readonly msg = new Uint8Array(32 + 1 + 64);
  private readonly scratch = new Uint8Array(1 << 16);
  private unitStamp = new Int32Array(64).fill(-1);
  private unitLocal = new Int32Array(64);
  private chunkUnits: string[] = [];
  private partIndex = new Map<number, number>();
  private parts: { hospital: string; month: number; defaulted: number }[] = [];
  private chunkNo = 0;
  private lastMsgLen = -1;
  private lastMsg = new Uint8Array(32 + 1 + 64);
  private lastPatientRef = 0;
  private readonly row: CheckedRow = emptyCheckedRow();
  private readonly issues: RowIssue[] = [];
  private readonly keyWords = new Uint32Array(4);

  constructor(readonly ctx: ChunkContext) {
    this.labs = ctx.dataset === 'labs';
    this.rules = ruleContext(ctx.dataset, ctx.asOfDay, ctx.period);
    this.hmac = hmacSha256(ctx.key);
    this.nReq = ctx.index.length;
    this.idx = Int32Array.from(ctx.index);
    this.colOf = new Int32Array(Math.max(ctx.columnCount, 1)).fill(-1);
    // Room for every field of a record with the header's count: a wider file
    // with fixed 256-field scratch left later fields out of the fingerprint
    // (false duplicates) while the string path hashed them all.
    const maxFields = Math.max(256, ctx.columnCount);
    this.bounds = new Int32Array(2 * maxFields);
    this.comp = new Uint32Array(2 * maxFields);
    ctx.index.forEach((k, col) => (this.colOf[k] = col));
    const specs = MEASURES[ctx.dataset];
    this.nMeasures = specs.length;
    this.plausibleLo = Float64Array.from(specs, (s) => s.plausible[0]);
    this.plausibleHi = Float64Array.from(specs, (s) => s.plausible[1]);
    this.normalLo = Float64Array.from(specs, (s) => s.normal?.[0] ?? NaN);
    this.normalHi = Float64Array.from(specs, (s) => s.normal?.[1] ?? NaN);
    this.hasNormal = Uint8Array.from(specs, (s) => (s.normal ? 1 : 0));
    this.out = new AcceptedRows(this.labs);
    this.periodFirst = ctx.period ? ctx.period.first : -Infinity;
    this.periodLast = ctx.period ? ctx.period.last : Infinity;
    // Fields replaced during a run (arrays grown) are
    // replaced once here, before any code is compiled: V8 treats a field that
    // was never reassigned as a constant, and its first replacement mid-run
    // deoptimised every function compiled with it, the record loop included.
    this.valueRaw = this.valueRaw.slice();
    this.unitConv = this.unitConv.slice();
    this.unitStamp = this.unitStamp.slice();
    this.unitLocal = this.unitLocal.slice();
    // Run the record loop on nothing, so that its exit path has type feedback
    // when the loop is compiled mid-chunk (on-stack replacement); without it
    // the first chunk's end deoptimised the compiled loop. V8 gives a function
    // somewhere to keep feedback only after enough of its bytecode has run
    // (--interrupt-budget-factor-for-feedback-allocation): one run (as before
    // 2026-12-04) recorded nothing, 32 were not enough, 64 were; 256 cost
    // well under a millisecond.
    for (let k = 0; k < 256; k++) this.scan(new Uint8Array(0), new RejectList(), new Array<number>(this.nReq).fill(0));
  }

  /** Points the shared-dictionary views at the coordinator's current buffers. */
  private attach(dicts: SharedDicts): void {
    const same = (t: ByteTable | null, s: TableState) => t !== null && t.state.slots === s.slots && t.state.pool === s.pool;
    if (!same(this.sharedPatients, dicts.patients)) this.sharedPatients = ByteTable.view(dicts.patients);
    if (!same(this.sharedValues, dicts.values)) this.sharedValues = ByteTable.view(dicts.values);
  }

  run(bytes: Uint8Array, seq: number, dicts: SharedDicts, spare: ArrayBuffer | null = null): ChunkResult {
    this.attach(dicts);
    this.chunkNo++;
    this.newPatients.reset(this.chunkNo);
    this.newValues.reset(this.chunkNo);
    // A full cache starts over in place: a fresh table grew again from 64
    // entries, leaving every size it went through as garbage (~6 MB a time
    // at the limit, a few times a file at 10M rows), which sat in the
    // thread's malloc arena until a collection and kept it large.
    if (this.patientCache.size > CACHE_LIMIT) this.patientCache.clear();
    if (this.valueCache.size > CACHE_LIMIT) this.valueCache.clear();
    if (this.knownValues.size > CACHE_LIMIT) this.knownValues.clear();
    this.chunkUnits = [];
    this.partIndex = new Map();
    this.parts = [];
    this.lastMsgLen = -1;
    const rejects = new RejectList();
    const filled = new Array<number>(this.nReq).fill(0);
    const t0 = performance.now();
    this.scan(bytes, rejects, filled);
    const [rows, lines, blankLines, sampled, sParse, sRules, sTransform] = this.scanStats;
    const t1 = performance.now();
    // Partitions in (hospital, month) order, so the coordinator meets them in an order that does not depend on the rows'.
    const order = this.parts.map((_, i) => i).sort((x, y) => {
      const a = this.parts[x];
      const c = this.parts[y];
      return a.hospital < c.hospital ? -1 : a.hospital > c.hospital ? 1 : a.month - c.month;
    });
    const rank = new Uint32Array(order.length);
    order.forEach((p, k) => (rank[p] = k));
    const packed = this.out.pack(order.length, rank, spare);
    const parts = order.map((p) => this.parts[p]);
    const t2 = performance.now();
    // Split the chunk's time in the proportions the sampled rows showed.
    const loop = t1 - t0;
    const sum = sParse + sRules + sTransform;
    const share = (x: number) => (sampled > 0 && sum > 0 ? (loop * x) / sum : loop / 3);
    return {
      kind: 'chunk-result',
      seq,
      lines,
      blankLines,
      rows,
      parts,
      ...packed,
      units: this.chunkUnits,
      newPatients: this.newPatients.collect(this.patientCache),
      newValues: this.newValues.collect(this.valueCache),
      rejects: rejects.pack(),
      filled,
      timings: { parse: share(sParse), rules: share(sRules), transform: share(sTransform) + (t2 - t1) },
      bytes,
    };
  }

  /**
   * The record loop over one chunk (kept apart from the per-chunk set-up and
   * packing, so the optimising compiler sees one hot, stable function).
   */
  private scan(b: Uint8Array, rejects: RejectList, filled: number[]) {
    const end = b.length;
    const nReq = this.nReq;
    const idx = this.idx;
    const columnCount = this.ctx.columnCount;
    const bounds = this.bounds;
    // Fields past this are counted, not stored: such a record is longer than the header's, so the string path's.
    const maxFields = bounds.length >> 1;
    const labs = this.labs;
    const unitCol = labs ? 6 : 5;
    let rows = 0;
    let line = 0;
    let blankLines = 0;
    let sampled = 0;
    let sParse = 0;
    let sRules = 0;
    let sTransform = 0;
    let fastAccepted = 0;
    let fastDefaulted = 0;
    this.whoLen[0] = -1; // patient references are per chunk: no reuse across chunks

    let pos = 0;
    while (pos < end) {
      const c0 = b[pos];
      // Blank lines: nothing, or a lone CR, before the LF (or the end).
      if (c0 === LF) {
        pos++;
        line++;
        blankLines++;
        continue;
      }
      if (c0 === CR && (pos + 1 === end || b[pos + 1] === LF)) {
        pos = Math.min(end, pos + 2);
        if (pos <= end && b[pos - 1] === LF) line++;
        blankLines++;
        continue;
      }
      rows++;
      const sample = (rows & 63) === 0;
      const ta = sample ? performance.now() : 0;
      // ---- split: fields as byte ranges, trimmed; 0 = take the string path.
      const recStart = pos;
      let i = pos;
      let nf = 0;
      let simple = true;
      for (;;) {
        let s = i;
        let e: number;
        let c = i < end ? b[i] : LF;
        if (c === QUOTE) {
          s = ++i;
          i = scanTo(b, i, end, QSTOP);
          c = i < end ? b[i] : LF;
          if (i >= end || c !== QUOTE) {
            simple = false;
            break;
          }
          e = i++;
          c = i < end ? b[i] : LF;
          if (c === CR && i + 1 < end && b[i + 1] === LF) c = b[++i];
          if (c !== COMMA && c !== LF) {
            simple = false;
            break;
          }
        } else {
          i = scanTo(b, i, end, STOP);
          c = i < end ? b[i] : LF;
          if (c === QUOTE || c >= 0x80) {
            simple = false;
            break;
          }
          e = i;
        }
        while (s < e && isTrimByte(b[s])) s++;
        while (e > s && isTrimByte(b[e - 1])) e--;
        // Trimming beyond ASCII (a no-break space, U+3000…) is the string path's.
        if ((b[s] >= 0x80 || b[e - 1] >= 0x80) && mayEndInUnicodeSpace(b, s, e)) {
          simple = false;
          break;
        }
        if (nf < maxFields) {
          bounds[2 * nf] = s;
          bounds[2 * nf + 1] = e;
        }
        nf++;
        if (i >= end) break;
        if (b[i] === LF) {
          i++;
          break;
        }
        i++; // comma
        if (i >= end) {
          // A trailing comma at the very end: one more, empty field.
          bounds[2 * nf] = i;
          bounds[2 * nf + 1] = i;
          nf++;
          break;
        }
      }
      const tb = sample ? performance.now() : 0;
      if (!simple || nf !== columnCount) {
        const recEnd = parsedRecordEnd(b, recStart, end);
        line += this.slowRecord(b, recStart, recEnd, line, rejects, filled);
        pos = recEnd;
        continue;
      }
      const recLine = line;
      // The record ended at its LF (or the end): one line.
      if (b[i - 1] === LF) line++;
      pos = i;

      // ---- rules, on the trimmed required fields.
      const hs = bounds[2 * idx[0]];
      const he = bounds[2 * idx[0] + 1];
      const ds = bounds[2 * idx[1]];
      const de = bounds[2 * idx[1] + 1];
      const ps = bounds[2 * idx[2]];
      const pe = bounds[2 * idx[2] + 1];
      const ts = bounds[2 * idx[3]];
      const te = bounds[2 * idx[3] + 1];
      const vs = bounds[2 * idx[4]];
      const ve = bounds[2 * idx[4] + 1];
      const us = bounds[2 * idx[unitCol]];
      const ue = bounds[2 * idx[unitCol] + 1];
      let ok = he > hs && de > ds && pe > ps && te > ts && ve > vs && ue > us;
      // Who and when (hospital, date, patient): the rows of a visit repeat them, so the last row's checks are reused.
      if (ok && !this.sameWho(b, hs, he, ds, de, ps, pe)) ok = this.checkWho(b, hs, he, ds, de, ps, pe);
      // What: measure and unit (few combinations, cached), then the value.
      if (ok) ok = this.checkWhat(b, ts, te, us, ue);
      let valueId = -1;
      let value = NaN;
      let refLo = NaN;
      let refHi = NaN;
      let loIncl = true;
      let hiIncl = true;
      let defaulted = false;
      const measure = this.whatMeasure;
      if (ok) {
        valueId = this.knownValue(b, vs, ve);
        const raw = this.valueRaw[valueId];
        const conv = this.whatConv!;
        value = conv(raw);
        ok = raw === raw && value >= this.plausibleLo[measure] && value <= this.plausibleHi[measure];
        if (ok && labs) {
          const rs = bounds[2 * idx[5]];
          const re = bounds[2 * idx[5] + 1];
          if (re === rs) {
            defaulted = true;
            refLo = this.normalLo[measure];
            refHi = this.normalHi[measure];
          } else {
            const r = this.rangeAt(b, rs, re);
            if (r === null) ok = false;
            else {
              refLo = r.low === null ? NaN : conv(r.low);
              refHi = r.high === null ? NaN : conv(r.high);
              // A bound overflowing in the canonical unit: the string path rejects the range.
              if (refLo === Infinity || refLo === -Infinity || refHi === Infinity || refHi === -Infinity) ok = false;
              loIncl = r.lowInclusive;
              hiIncl = r.highInclusive;
            }
          }
        }
      }
      const tc = sample ? performance.now() : 0;
      if (!ok) {
        // Some rule failed (or could not be decided here): the string path decides and says why.
        line = recLine;
        line += this.slowRecord(b, recStart, pos, recLine, rejects, filled);
        continue;
      }
      // Every required field is filled, but a lab's empty reference range (counted at the end, and by partition here).
      fastAccepted++;
      if (defaulted) {
        this.parts[this.whoPart].defaulted++;
        fastDefaulted++;
      }

      // ---- transform: flag, dictionaries, fingerprint, partition.
      let flag: number;
      if (labs) flag = flagOf(value, refLo, refHi, loIncl, hiIncl);
      else flag = this.hasNormal[measure] ? flagOf(value, this.normalLo[measure], this.normalHi[measure], true, true) : FLAG_NONE;
      const r = this.out.next();
      const o = this.out;
      o.part[r] = this.whoPart;
      o.day[r] = this.whoDay;
      o.code[r] = measure | (flag << 8) | (this.chunkUnit(this.whatUnit) << 16);
      o.value[r] = value;
      if (labs) {
        o.ref[2 * r] = refLo;
        o.ref[2 * r + 1] = refHi;
      }
      o.patient[r] = this.whoPatient;
      o.srcValue[r] = this.valueRefOf(valueId, b, vs, ve);
      // Fingerprint: each field's hash, from its interned entry where there is one.
      const comp = this.comp;
      const colOf = this.colOf;
      for (let k = 0; k < nf; k++) if (colOf[k] < 0) hash64(b, bounds[2 * k], bounds[2 * k + 1], comp, 2 * k);
      this.copyHash(this.hospitals.payload, 2 * this.whoHospital, idx[0]);
      this.copyHash(this.dayHashes, 0, idx[1]);
      this.copyHash(this.whoPatientHash, 0, idx[2]);
      this.copyHash(this.types.payload, 2 * this.lastTypeId, idx[3]);
      this.copyHash(this.valueHash, 0, idx[4]);
      this.copyHash(this.units.payload, 2 * this.whatUnit, idx[unitCol]);
      if (labs) {
        if (defaulted) comp.set(EMPTY_HASH, 2 * idx[5]);
        else this.copyHash(this.ranges.payload, 2 * this.lastRangeId, idx[5]);
      }
      fingerprint(comp, nf, o.fp, 2 * r);
      o.pos[2 * r] = recStart;
      o.pos[2 * r + 1] = recLine;
      if (sample) {
        const td = performance.now();
        sParse += tb - ta;
        sRules += tc - tb;
        sTransform += td - tc;
        sampled++;
      }
    }

    for (let k = 0; k < nReq; k++) filled[k] += fastAccepted;
    if (labs) filled[5] -= fastDefaulted;
    // Counters go out through a typed array: a returned object literal would
    // leave the optimised loop (on-stack replaced) at every chunk's end.
    const st = this.scanStats;
    st[0] = rows;
    st[1] = line;
    st[2] = blankLines;
    st[3] = sampled;
    st[4] = sParse;
    st[5] = sRules;
    st[6] = sTransform;
  }

  /** rows, lines, blank lines, sampled rows, sampled parse / rules / transform ms of the last `scan`. */
  private readonly scanStats = new Float64Array(7);

  // ---- the fast path's cached checks

  /** Whether hospital, date and patient are byte for byte those of the last row checkWho accepted. */
  private sameWho(b: Uint8Array, hs: number, he: number, ds: number, de: number, ps: number, pe: number): boolean {
    const len = this.whoLen;
    if (len[0] !== he - hs || len[1] !== de - ds || len[2] !== pe - ps) return false;
    const w = this.whoBytes;
    for (let i = 0; i < len[0]; i++) if (w[i] !== b[hs + i]) return false;
    for (let i = 0; i < len[1]; i++) if (w[32 + i] !== b[ds + i]) return false;
    for (let i = 0; i < len[2]; i++) if (w[42 + i] !== b[ps + i]) return false;
    return true;
  }

  /**
   * Checks hospital, date and patient; when all pass, remembers them and
   * what follows from them (partition, patient reference and hashes).
   */
  private checkWho(b: Uint8Array, hs: number, he: number, ds: number, de: number, ps: number, pe: number): boolean {
    if (he - hs > 32 || de - ds !== 10 || pe - ps > 64) return false;
    const hosp = this.hospitalId(b, hs, he);
    if (hosp < 0) return false;
    const day = parseDateBytes(b, ds, de);
    if (!(day === day && day <= this.ctx.asOfDay && day >= this.periodFirst && day <= this.periodLast)) return false;
    if (!isIdBytes(b, ps, pe, 64)) return false;
    const month = ((b[ds] - 48) * 1000 + (b[ds + 1] - 48) * 100 + (b[ds + 2] - 48) * 10 + (b[ds + 3] - 48)) * 12 + (b[ds + 5] - 48) * 10 + (b[ds + 6] - 48) - 1;
    this.whoHospital = hosp;
    this.whoDay = day;
    this.whoPart = this.partOf(hosp, month);
    this.whoPatient = this.patientRef(b, hs, he, ps, pe);
    // The patient's hash now, not patientHash later: the string path moves patientHash on.
    this.whoPatientHash[0] = this.patientHash[0];
    this.whoPatientHash[1] = this.patientHash[1];
    dayHash(day, this.dayHashes, 0);
    const w = this.whoBytes;
    const len = this.whoLen;
    len[0] = he - hs;
    len[1] = 10;
    len[2] = pe - ps;
    // Byte loops, not set(subarray): this runs once a visit, and a subarray is an allocation.
    for (let i = hs; i < he; i++) w[i - hs] = b[i];
    for (let i = ds; i < de; i++) w[32 + i - ds] = b[i];
    for (let i = ps; i < pe; i++) w[42 + i - ps] = b[i];
    return true;
  }

  private readonly whoLen = new Int32Array(3).fill(-1);
  private readonly whoBytes = new Uint8Array(32 + 10 + 64);
  private whoHospital = 0;
  private whoDay = 0;
  private whoPart = 0;
  private whoPatient = 0;
  private readonly dayHashes = new Uint32Array(2);
  private readonly whoPatientHash = new Uint32Array(2);
  private readonly periodFirst: number;
  private readonly periodLast: number;

  /**
   * Measure and unit of a row, with the unit's conversion: through a small
   * cache of (type, unit) spellings, as a file has only a few dozen. Sets
   * whatMeasure, whatUnit, whatConv (and lastTypeId); false when the type
   * is unknown or the unit not allowed for it.
   */
  private checkWhat(b: Uint8Array, ts: number, te: number, us: number, ue: number): boolean {
    const k = ((te - ts) * 31 + b[ts] * 7 + b[te - 1] + (ue - us) * 17 + b[us] * 3 + b[ue - 1] * 5) & 255;
    const t = this.comboType[k] - 1;
    const u = this.comboUnit[k] - 1;
    if (t >= 0 && this.types.equals(t, b, ts, te) && this.units.equals(u, b, us, ue)) {
      this.lastTypeId = t;
      this.whatMeasure = this.typeMeasure[t];
      this.whatUnit = u;
      this.whatConv = this.comboConv[k];
      return this.whatConv !== null;
    }
    const measure = this.measureOf(b, ts, te);
    if (measure < 0) return false;
    const unit = internField(this.units, b, us, ue);
    if (this.units.isNew) this.unitName[unit] = Buffer.from(b.buffer, b.byteOffset + us, ue - us).toString('utf8');
    const conv = this.conversion(unit, measure);
    this.comboType[k] = this.lastTypeId + 1;
    this.comboUnit[k] = unit + 1;
    this.comboConv[k] = conv;
    this.whatMeasure = measure;
    this.whatUnit = unit;
    this.whatConv = conv;
    return conv !== null;
  }

  private readonly comboType = new Int32Array(256);
  private readonly comboUnit = new Int32Array(256);
  private readonly comboConv: (Convert | null)[] = new Array(256).fill(null);
  private whatMeasure = 0;
  private whatUnit = 0;
  private whatConv: Convert | null = null;

  /** The source value's id among the values seen here; its number (NaN if not a plain decimal) in valueRaw. */
  private knownValue(b: Uint8Array, s: number, e: number): number {
    const known = this.knownValues;
    const id = known.internCached(b, s, e);
    if (known.isNew) {
      hash64(b, s, e, known.payload, 3 * id + 1);
      if (id >= this.valueRaw.length) {
        const more = new Float64Array(this.valueRaw.length * 2);
        more.set(this.valueRaw);
        this.valueRaw = more;
      }
      this.valueRaw[id] = parseDecimalBytes(b, s, e);
    }
    return id;
  }

  private valueRaw = new Float64Array(1024);

  /** comp[field k] = the two hash words at from[at]. */
  private copyHash(from: Uint32Array, at: number, k: number): void {
    this.comp[2 * k] = from[at];
    this.comp[2 * k + 1] = from[at + 1];
  }

  /** Interned hospital id, or −1 when the hospital_id is not valid. */
  private hospitalId(b: Uint8Array, s: number, e: number): number {
    const id = internField(this.hospitals, b, s, e);
    if (this.hospitals.isNew) {
      const name = Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8');
      this.hospitalName[id] = name;
      this.hospitalOk[id] = isValidHospitalId(name);
    }
    return this.hospitalOk[id] ? id : -1;
  }

  /** Measure index of a type name, or −1 when unknown. */
  private measureOf(b: Uint8Array, s: number, e: number): number {
    const id = internField(this.types, b, s, e);
    if (this.types.isNew) this.typeMeasure[id] = this.rules.measures.byName.get(Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8')) ?? -1;
    this.lastTypeId = id;
    return this.typeMeasure[id];
  }

  /** The conversion of a unit for a measure, or null when the unit is not allowed. */
  private conversion(unit: number, measure: number): Convert | null {
    const k = unit * this.nMeasures + measure;
    if (k >= this.unitConv.length) {
      const bigger = new Int32Array(Math.max(k + 1, this.unitConv.length * 2));
      bigger.set(this.unitConv);
      this.unitConv = bigger;
    }
    let c = this.unitConv[k];
    if (c === 0) {
      const f = this.rules.measures.unitFor(measure, this.unitName[unit]);
      if (!f) c = -1;
      else {
        let at = this.converters.indexOf(f);
        if (at < 0) at = this.converters.push(f) - 1;
        c = at + 1;
      }
      this.unitConv[k] = c;
    }
    return c < 0 ? null : this.converters[c - 1];
  }

  private rangeAt(b: Uint8Array, s: number, e: number): RefRange | null {
    const id = internField(this.ranges, b, s, e);
    if (this.ranges.isNew) this.rangeOf[id] = parseRefRange(Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8'));
    this.lastRangeId = id;
    return this.rangeOf[id];
  }

  /** The chunk's index of a (hospital, month) partition. */
  private partOf(hosp: number, month: number): number {
    const key = hosp * 0x100000 + month;
    let p = this.partIndex.get(key);
    if (p === undefined) {
      p = this.parts.length;
      this.parts.push({ hospital: this.hospitalName[hosp], month, defaulted: 0 });
      this.partIndex.set(key, p);
    }
    return p;
  }

  /** The chunk's index of an interned unit. */
  private chunkUnit(unit: number): number {
    if (unit >= this.unitStamp.length) {
      const s = new Int32Array(unit * 2 + 1).fill(-1);
      s.set(this.unitStamp);
      this.unitStamp = s;
      const l = new Int32Array(s.length);
      l.set(this.unitLocal);
      this.unitLocal = l;
    }
    if (this.unitStamp[unit] !== this.chunkNo) {
      this.unitStamp[unit] = this.chunkNo;
      this.unitLocal[unit] = this.chunkUnits.length;
      this.chunkUnits.push(this.unitName[unit]);
    }
    return this.unitLocal[unit];
  }

  /**
   * The row's patient reference: `hospital_id|patient_id` looked up in the
   * shared dictionary, else keyed here (and cached) and sent as new.
   * Consecutive rows of one patient (a visit) skip the lookup.
   */
  private patientRef(b: Uint8Array, hs: number, he: number, ps: number, pe: number): number {
    const hl = he - hs;
    const n = hl + 1 + (pe - ps);
    const last = this.lastMsg;
    if (n === this.lastMsgLen && last[hl] === PIPE) {
      let k = 0;
      while (k < hl && last[k] === b[hs + k]) k++;
      if (k === hl) {
        let j = 0;
        const pl = pe - ps;
        while (j < pl && last[hl + 1 + j] === b[ps + j]) j++;
        if (j === pl) return this.lastPatientRef;
      }
    }
    const msg = this.msg;
    let m = 0;
    for (let i = hs; i < he; i++) msg[m++] = b[i];
    msg[m++] = PIPE;
    for (let i = ps; i < pe; i++) msg[m++] = b[i];
    const ref = this.lookupPatient(msg, n);
    hash64(b, ps, pe, this.patientHash);
    for (let i = 0; i < n; i++) last[i] = msg[i];
    this.lastMsgLen = n;
    this.lastPatientRef = ref;
    return ref;
  }

  private lookupPatient(msg: Uint8Array, n: number): number {
    const h = hashBytes(msg, 0, n);
    const shared = this.sharedPatients!.find(msg, 0, n, h);
    if (shared >= 0) return shared;
    const cache = this.patientCache;
    let id = cache.find(msg, 0, n, h);
    if (id < 0) {
      this.hmac(msg, 0, n, this.keyWords, 0, 4);
      id = cache.add(msg, 0, n, h, this.keyWords, 0);
    }
    return (PENDING | this.newPatients.indexOf(id)) >>> 0;
  }

  /**
   * The source-value reference of a known value (see knownValue); leaves
   * its 64-bit hash in `valueHash`. Values the coordinator has published
   * are remembered with their shared id (payload: id + 1, hash words).
   */
  private valueRefOf(id: number, b: Uint8Array, s: number, e: number): number {
    const p = this.knownValues.payload;
    const vh = this.valueHash;
    vh[0] = p[3 * id + 1];
    vh[1] = p[3 * id + 2];
    if (p[3 * id] > 0) return p[3 * id] - 1;
    const shared = this.sharedValues!.find(b, s, e, vh[0]);
    if (shared >= 0) {
      p[3 * id] = shared + 1;
      return shared;
    }
    const pending = this.valueCache.intern(b, s, e, vh[0]);
    return (PENDING | this.newValues.indexOf(pending)) >>> 0;
  }

  /**
   * The string path for one record, bytes [start, end): the parser splits
   * it, `checkRow` decides. A rejected row goes to `rejects` with every rule
   * it fails; an accepted one joins the output like a fast-path row.
   * Returns the LFs consumed.
   */
  private slowRecord(b: Uint8Array, start: number, end: number, lineBase: number, rejects: RejectList, filled: number[]): number {
    const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    const ctx = this.ctx;
    const nReq = this.nReq;
    const { lines } = parseRecords(buf, start, end, (r) => {
      const line = lineBase + r.line;
      const fields = r.fields;
      const countOk = fields.length === ctx.columnCount;
      const reject = (codes: string, raw: string, required: readonly string[] | null) => {
        // A record with the wrong field count is not attributed: its hospital_id
        // column may hold another field (a patient ID, a date), which must never
        // become a partition name (SPEC §2). It goes to __invalid__.
        const h = countOk ? fields[ctx.index[0]].trim() : '';
        rejects.push(line, codes, isValidHospitalId(h) ? h : INVALID_HOSPITAL, rejectCells(codes, fields, ctx.columnCount, raw), required);
      };
      // Anything but a bad quote alone (which leaves fields to check) rejects the record whole.
      if (!countOk || (r.problem & ~Problem.BadQuote) !== 0) {
        reject(recordCodes(countOk, r.problem), buf.toString(r.problem & Problem.InvalidUtf8 ? 'latin1' : 'utf8', r.start, r.end).replace(/\r?\n$/, ''), null);
        return;
      }
      const f = new Array<string>(nReq);
      for (let i = 0; i < nReq; i++) {
        f[i] = fields[ctx.index[i]].trim();
        if (f[i] !== '') filled[i]++;
      }
      const issues = this.issues;
      issues.length = 0;
      const ok = checkRow(this.rules, f, this.row, issues);
      if (r.problem === Problem.BadQuote) issues.unshift({ code: 'row.bad_quote', field: '' });
      if (!ok || issues.length > 0) {
        reject(issues.map((i) => i.code).join(';'), '', f);
        return;
      }
      this.acceptChecked(fields.map((x) => x.trim()), r.start, line);
    });
    return lines;
  }

  /** Adds a row the string path accepted (this.row holds its curated values). */
  private acceptChecked(trimmed: string[], recStart: number, line: number): void {
    const row = this.row;
    // Every field's UTF-8 bytes in one scratch buffer, as the fast path sees them.
    const sc = trimmed.reduce((n, s) => n + Buffer.byteLength(s), 0) <= this.scratch.length ? this.scratch : new Uint8Array(trimmed.reduce((n, s) => n + Buffer.byteLength(s), 0));
    const bounds = new Int32Array(2 * trimmed.length);
    let at = 0;
    const sbuf = Buffer.from(sc.buffer, sc.byteOffset, sc.byteLength);
    for (let k = 0; k < trimmed.length; k++) {
      bounds[2 * k] = at;
      at += sbuf.write(trimmed[k], at, 'utf8');
      bounds[2 * k + 1] = at;
    }
    const field = (col: number) => [bounds[2 * this.idx[col]], bounds[2 * this.idx[col] + 1]] as const;
    const [hs, he] = field(0);
    const [ps, pe] = field(2);
    const [vs, ve] = field(4);
    const [us, ue] = field(this.labs ? 6 : 5);
    const hosp = internField(this.hospitals, sc, hs, he);
    if (this.hospitals.isNew) {
      this.hospitalName[hosp] = row.hospitalId;
      this.hospitalOk[hosp] = true;
    }
    const unit = internField(this.units, sc, us, ue);
    if (this.units.isNew) this.unitName[unit] = row.sourceUnit;
    const o = this.out;
    const r = o.next();
    const part = this.partOf(hosp, row.monthIndex);
    if (this.labs && row.defaultedRange) this.parts[part].defaulted++;
    o.part[r] = part;
    o.day[r] = row.day;
    o.code[r] = row.measure | (row.flag << 8) | (this.chunkUnit(unit) << 16);
    o.value[r] = row.value;
    if (this.labs) {
      o.ref[2 * r] = row.refLow;
      o.ref[2 * r + 1] = row.refHigh;
    }
    o.patient[r] = this.patientRef(sc, hs, he, ps, pe);
    o.srcValue[r] = this.valueRefOf(this.knownValue(sc, vs, ve), sc, vs, ve);
    // The same field hashes as the fast path: bytes for every field, the day for the date.
    const comp = new Uint32Array(2 * trimmed.length);
    for (let k = 0; k < trimmed.length; k++) hash64(sc, bounds[2 * k], bounds[2 * k + 1], comp, 2 * k);
    dayHash(row.day, comp, 2 * this.idx[1]);
    fingerprint(comp, trimmed.length, o.fp, 2 * r);
    o.pos[2 * r] = recStart;
    o.pos[2 * r + 1] = line;
  }
}
