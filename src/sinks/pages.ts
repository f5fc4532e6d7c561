/**
 * Parquet column chunks written by hand for the curated schema: every
 * column dictionary-encoded (a PLAIN dictionary page, then one DATA_PAGE_V2
 * of RLE/bit-packed indices), uncompressed. The row group's metadata is
 * returned in hyparquet's shape, so hyparquet-writer still writes the footer
 * (src/sinks/parquet.ts). Format: https://parquet.apache.org/docs/file-format/
 * and the Thrift compact protocol for page headers. See
 * docs/decisions/0005-parquet-encoder.md for why.
 */

/** A growable little-endian byte buffer. */
export class Bytes {
  buf: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(capacity = 1 << 16) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.length));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }

  u8(x: number): void {
    this.reserve(1);
    this.buf[this.length++] = x;
  }

  u32(x: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, x, true);
    this.length += 4;
  }

  i32(x: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, x, true);
    this.length += 4;
  }

  f64(x: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, x, true);
    this.length += 8;
  }

  varint(x: number): void {
    this.reserve(10);
    while (x > 0x7f) {
      this.buf[this.length++] = (x & 0x7f) | 0x80;
      x = Math.floor(x / 128);
    }
    this.buf[this.length++] = x;
  }

  bytes(b: Uint8Array, start = 0, end = b.length): void {
    this.reserve(end - start);
    this.buf.set(b.subarray(start, end), this.length);
    this.length += end - start;
  }

  /** Appends another buffer's content. */
  append(o: Bytes): void {
    this.bytes(o.buf, 0, o.length);
  }
}

// Thrift compact protocol, just what page headers need.
const T_TRUE = 1;
const T_FALSE = 2;
const T_I32 = 5;
const T_STRUCT = 12;

/** One struct field: [field id, value]; booleans and nested structs ([id, fields]) included. */
type Field = [number, number | boolean | Field[]];

function writeStruct(out: Bytes, fields: Field[]): void {
  let last = 0;
  for (const [id, v] of fields) {
    const type = typeof v === 'boolean' ? (v ? T_TRUE : T_FALSE) : Array.isArray(v) ? T_STRUCT : T_I32;
    const delta = id - last;
    if (delta > 0 && delta <= 15) out.u8((delta << 4) | type);
    else {
      out.u8(type);
      out.varint(((id << 1) ^ (id >> 31)) >>> 0);
    }
    last = id;
    if (type === T_I32) out.varint((((v as number) << 1) ^ ((v as number) >> 31)) >>> 0);
    else if (type === T_STRUCT) writeStruct(out, v as Field[]);
  }
  out.u8(0); // stop
}

const PAGE_DATA_V2 = 3;
const PAGE_DICTIONARY = 2;
const ENC_PLAIN = 0;
const ENC_RLE_DICTIONARY = 8;

/**
 * The RLE / bit-packing hybrid encoding of values[0, n) at `width` bits:
 * runs of 8 or more equal values as RLE runs, the rest in bit-packed groups
 * of 8 (the last group padded with zeros; readers stop at num_values).
 */
export function writeHybrid(out: Bytes, values: Uint32Array, n: number, width: number): void {
  const runBytes = (width + 7) >> 3;
  let i = 0;
  let groupsStart = -1;
  let groups = 0;
  while (i < n) {
    const v = values[i];
    let run = 1;
    while (i + run < n && values[i + run] === v) run++;
    if (run >= 8) {
      if (groups > 0) bitPacked(out, values, n, width, groupsStart, groups);
      groups = 0;
      out.varint(run << 1);
      for (let b = 0; b < runBytes; b++) out.u8((v >>> (8 * b)) & 0xff);
      i += run;
    } else {
      if (groups === 0) groupsStart = i;
      groups++;
      i += 8;
    }
  }
  if (groups > 0) bitPacked(out, values, n, width, groupsStart, groups);
}

/**
 * One bit-packed run: `groups` groups of 8 values from values[start] at
 * `width` bits (past n, zeros). A function of its own, not a closure made
 * per call: V8 keeps a closure's optimised code for the next closure from
 * the same site, and one that deoptimised on its first line did so again on
 * every call (docs/performance/HISTORY.md).
 */
function bitPacked(out: Bytes, values: Uint32Array, n: number, width: number, start: number, groups: number): void {
  out.varint((groups << 1) | 1);
  out.reserve(groups * width);
  const buf = out.buf;
  let o = out.length;
  let acc = 0;
  let bits = 0;
  const end = start + groups * 8;
  for (let k = start; k < end; k++) {
    const v = k < n ? values[k] : 0;
    // acc holds < 8 pending bits; add width bits (width ≤ 24 keeps acc within 32 bits).
    acc |= v << bits;
    bits += width;
    while (bits >= 8) {
      buf[o++] = acc & 0xff;
      acc >>>= 8;
      bits -= 8;
    }
  }
  out.length = o;
}

/** Bits needed to write indices below `count` (0 for a one-entry dictionary, as readers expect). */
export function bitWidth(count: number): number {
  let w = 0;
  while ((1 << w) < count) w++;
  return w;
}

export interface ColumnMeta {
  file_offset: bigint;
  meta_data: {
    type: 'BYTE_ARRAY' | 'INT32' | 'DOUBLE';
    encodings: string[];
    path_in_schema: string[];
    codec: 'UNCOMPRESSED';
    num_values: bigint;
    total_uncompressed_size: bigint;
    total_compressed_size: bigint;
    data_page_offset: bigint;
    dictionary_page_offset: bigint;
    statistics?: { min_value: number; max_value: number; null_count: bigint };
  };
}

/**
 * Writes one dictionary-encoded column chunk at the end of `out`.
 * `dictionary` holds the PLAIN-encoded dictionary values (`dictCount` of
 * them); `indices[0, nonNull)` the dictionary index of each non-null value;
 * `defined`, for an optional column, one 0/1 per row (null when required).
 */
/** A data page's body, reused from column to column (it is copied into `out`). */
const pageBody = new Bytes(1 << 16);

export function writeColumnChunk(
  out: Bytes,
  name: string,
  type: ColumnMeta['meta_data']['type'],
  rows: number,
  dictionary: Bytes,
  dictCount: number,
  indices: Uint32Array,
  nonNull: number,
  defined: Uint32Array | null,
  scratch: Bytes,
  statistics?: { min: number; max: number },
): ColumnMeta {
  const start = out.length;
  // Dictionary page.
  const dictHeader = scratch;
  dictHeader.length = 0;
  writeStruct(dictHeader, [
    [1, PAGE_DICTIONARY],
    [2, dictionary.length],
    [3, dictionary.length],
    [7, [[1, dictCount], [2, ENC_PLAIN]]],
  ]);
  out.append(dictHeader);
  out.append(dictionary);
  const dataStart = out.length;
  // Data page: levels (optional columns) then the bit width and the indices.
  const body = pageBody;
  body.length = 0;
  let levelsLength = 0;
  if (defined) {
    writeHybrid(body, defined, rows, 1);
    levelsLength = body.length;
  }
  const width = bitWidth(dictCount);
  body.u8(width);
  writeHybrid(body, indices, nonNull, width);
  const pageHeader = scratch;
  pageHeader.length = 0;
  writeStruct(pageHeader, [
    [1, PAGE_DATA_V2],
    [2, body.length],
    [3, body.length],
    [8, [[1, rows], [2, rows - nonNull], [3, rows], [4, ENC_RLE_DICTIONARY], [5, levelsLength], [6, 0], [7, false]]],
  ]);
  out.append(pageHeader);
  out.append(body);
  const size = BigInt(out.length - start);
  return {
    file_offset: BigInt(start),
    meta_data: {
      type,
      encodings: ['PLAIN', 'RLE', 'RLE_DICTIONARY'],
      path_in_schema: [name],
      codec: 'UNCOMPRESSED',
      num_values: BigInt(rows),
      total_uncompressed_size: size,
      total_compressed_size: size,
      data_page_offset: BigInt(dataStart),
      dictionary_page_offset: BigInt(start),
      ...(statistics ? { statistics: { min_value: statistics.min, max_value: statistics.max, null_count: BigInt(rows - nonNull) } } : {}),
    },
  };
}
