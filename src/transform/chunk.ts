/**
 * One chunk, start to finish, as a pure function: parse its records, apply
 * every row rule, transform accepted rows (units, flags, patient key) and
 * group them column-wise by (hospital, month). This is all the per-row work
 * of a run, and it runs in the workers.
 */
import type { RowIssue } from '../rules/codes.js';
import { INVALID_HOSPITAL, isValidHospitalId, monthOf } from '../rules/fields.js';
import { checkRow, emptyCheckedRow, ruleContext, type RuleContext } from '../rules/row.js';
import { parseRecords, parseText, Problem, regionEncoding } from '../parse/csv.js';
import type { ChunkBlock, ChunkContext, ChunkResult, Rejects } from '../types.js';
import { hashFields } from './hash.js';
import { pseudonymiser } from './pseudonym.js';

const PROBLEM_CODE: Record<number, string> = {
  [Problem.BadQuote]: 'row.bad_quote',
  [Problem.UnterminatedQuote]: 'row.unterminated_quote',
  [Problem.InvalidUtf8]: 'row.invalid_utf8',
};

/** Accumulates one (hospital, month) group in plain arrays, then packs it. */
class BlockBuilder {
  day: number[] = [];
  code: number[] = [];
  value: number[] = [];
  ref: number[] = [];
  patientKeys: string[] = [];
  srcUnitIds = new Map<string, number>();
  srcUnits: string[] = [];
  srcValues: string[] = [];
  hash: number[] = [];
  pos: number[] = [];
  constructor(readonly hospital: string, readonly month: string) {}

  pack(): ChunkBlock {
    const srcValueEnd = new Uint32Array(this.srcValues.length);
    let end = 0;
    for (let i = 0; i < this.srcValues.length; i++) {
      end += this.srcValues[i].length;
      srcValueEnd[i] = end;
    }
    return {
      hospital: this.hospital,
      month: this.month,
      n: this.day.length,
      day: Int32Array.from(this.day),
      code: Uint32Array.from(this.code),
      value: Float64Array.from(this.value),
      ref: Float64Array.from(this.ref),
      patientKeys: this.patientKeys.join(''),
      srcUnits: this.srcUnits,
      srcValues: this.srcValues.join(''),
      srcValueEnd,
      hash: Uint32Array.from(this.hash),
      pos: Uint32Array.from(this.pos),
    };
  }
}

/** Per-context state a worker keeps between chunks (rule tables, key cache). */
export interface ChunkProcessor {
  (bytes: Uint8Array, seq: number): ChunkResult;
}

export function chunkProcessor(ctx: ChunkContext): ChunkProcessor {
  const rules: RuleContext = ruleContext(ctx.dataset, ctx.asOfDay, ctx.period);
  const pseudo = pseudonymiser(ctx.key);
  const labs = ctx.dataset === 'labs';
  const nRequired = ctx.index.length;
  return (bytes, seq) => processChunk(bytes, seq, ctx, rules, pseudo, labs, nRequired);
}

function processChunk(
  bytes: Uint8Array,
  seq: number,
  ctx: ChunkContext,
  rules: RuleContext,
  pseudo: (h: string, p: string) => string,
  labs: boolean,
  nRequired: number,
): ChunkResult {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const t0 = performance.now();
  const groups = new Map<string, Map<number, BlockBuilder>>();
  const rejects: Rejects = { line: [], codes: [], hospital: [], fields: [], raw: [] };
  const filled = new Array<number>(nRequired).fill(0);
  const f = new Array<string>(nRequired).fill('');
  const row = emptyCheckedRow();
  const issues: RowIssue[] = [];
  const hash = new Uint32Array(2);
  let rows = 0;
  let defaultedRanges = 0;
  let rulesMs = 0;

  const reject = (fields: string[], line: number, codes: string, raw: string) => {
    const h = fields.length > ctx.index[0] ? fields[ctx.index[0]].trim() : '';
    rejects.line.push(line);
    rejects.codes.push(codes);
    rejects.hospital.push(isValidHospitalId(h) ? h : INVALID_HOSPITAL);
    rejects.fields.push(fields.slice());
    rejects.raw.push(raw);
  };

  const onRecord = (r: { fields: string[]; start: number; end: number; line: number; problem: Problem }) => {
    rows++;
    const fields = r.fields;
    const countOk = fields.length === ctx.columnCount;
    if (!countOk || (r.problem !== Problem.None && r.problem !== Problem.BadQuote)) {
      const code = !countOk && r.problem === Problem.None ? 'row.field_count' : PROBLEM_CODE[r.problem];
      reject(fields, r.line, code, rawRecord(r.start, r.end));
      return;
    }
    for (let i = 0; i < nRequired; i++) {
      const v = fields[ctx.index[i]].trim();
      f[i] = v;
      if (v !== '') filled[i]++;
    }
    issues.length = 0;
    // Timing every row would cost more than the rules; sample one row in 32.
    let ok: boolean;
    if ((rows & 31) === 0) {
      const ta = performance.now();
      ok = checkRow(rules, f, row, issues);
      rulesMs += (performance.now() - ta) * 32;
    } else ok = checkRow(rules, f, row, issues);
    if (r.problem === Problem.BadQuote) issues.unshift({ code: 'row.bad_quote', field: '' });
    if (!ok || issues.length > 0) {
      reject(fields, r.line, issues.map((i) => i.code).join(';'), '');
      return;
    }
    // Duplicate detection hashes every field of the row, extras included.
    const all = fields.length === nRequired ? f : fields.map((x) => x.trim());
    hashFields(all, hash);
    // Groups by hospital, then by an integer month key: no string is built per row.
    let byMonth = groups.get(row.hospitalId);
    if (!byMonth) groups.set(row.hospitalId, (byMonth = new Map()));
    let g = byMonth.get(row.monthIndex);
    if (!g) {
      byMonth.set(row.monthIndex, (g = new BlockBuilder(row.hospitalId, monthOf(row.monthIndex))));
    }
    g.day.push(row.day);
    g.value.push(row.value);
    if (labs) {
      g.ref.push(row.refLow, row.refHigh);
      if (row.defaultedRange) defaultedRanges++;
    }
    g.patientKeys.push(pseudo(row.hospitalId, row.patientId));
    let ui = g.srcUnitIds.get(row.sourceUnit);
    if (ui === undefined) {
      ui = g.srcUnits.length;
      g.srcUnitIds.set(row.sourceUnit, ui);
      g.srcUnits.push(row.sourceUnit);
    }
    g.code.push(row.measure | (row.flag << 8) | (ui << 16));
    g.srcValues.push(row.sourceValue);
    g.hash.push(hash[0], hash[1]);
    g.pos.push(r.start, r.line);
  };
  // One native decode per chunk, then string slicing (docs/PERFORMANCE.md);
  // chunks with invalid UTF-8 take the byte parser, which checks each record.
  const enc = regionEncoding(buf, 0, buf.length);
  const text = enc === 'mixed' ? null : enc === 'latin1' ? buf.toString('latin1') : buf.toString('utf8');
  const rawRecord = (start: number, end: number): string => {
    const raw = text !== null ? text.slice(start, end) : buf.toString('latin1', start, end);
    return raw.replace(/\r?\n$/, '');
  };
  const { lines, blankLines } = text !== null ? parseText(text, onRecord) : parseRecords(buf, 0, buf.length, onRecord);
  const t1 = performance.now();
  // Blocks in a deterministic order: by hospital, then month.
  const blocks = [...groups.values()].flatMap((m) => [...m.values()])
    .sort((a, b) => (a.hospital < b.hospital ? -1 : a.hospital > b.hospital ? 1 : a.month < b.month ? -1 : a.month > b.month ? 1 : 0))
    .map((g) => g.pack());
  const t2 = performance.now();
  return {
    kind: 'chunk-result',
    seq,
    lines,
    blankLines,
    rows,
    blocks,
    rejects,
    decoding: enc === 'mixed' ? 'bytes' : enc,
    filled,
    defaultedRanges,
    timings: { parse: Math.max(0, t1 - t0 - rulesMs), rules: Math.min(rulesMs, t1 - t0), transform: t2 - t1 },
    bytes,
  };
}
