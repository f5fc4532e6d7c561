/**
 * `validate`: a file-level preflight — the file exists and is readable, the
 * header has every required column, and a sample of the data is UTF-8 text.
 * Exit 0 or 2; rows are judged later, by `process`.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { preflight } from '../coordinator.js';
import { PipelineError } from '../errors.js';
import { shownNames } from '../parse/header.js';
import type { Dataset } from '../registry.js';

/** NUL bytes in the sample that, beyond 1 % of it, make the data binary rather than a few bad rows. */
const MIN_BINARY_NULS = 16;

export interface ValidateSummary {
  dataset: Dataset;
  input: string;
  bytes: number;
  columns: string[];
  extra_columns: string[];
  empty: boolean;
  sample_utf8: boolean;
}

export function validateFile(dataset: Dataset, input: string): ValidateSummary {
  const { header, size } = preflight(dataset, input);
  let sampleOk = true;
  if (header) {
    const fd = openSync(input, 'r');
    try {
      const sample = Buffer.alloc(Math.min(64 * 1024, size - header.dataOffset));
      const n = readSync(fd, sample, 0, sample.length, header.dataOffset);
      // Cut at the last newline so a multi-byte character is not split.
      const view = sample.subarray(0, Math.max(0, sample.lastIndexOf(0x0a, n - 1) + 1) || n);
      const nul = view.filter((b) => b === 0).length;
      // Many, not a few: in a small file one row's NUL is over 1 % of the bytes, and process would only quarantine that row.
      // Fewer NULs in bytes that are not UTF-8 either (a small compressed blob) are binary all the same.
      if (nul > view.length / 100 && (nul >= MIN_BINARY_NULS || !isUtf8(view))) throw new PipelineError('HCP_ERR_NOT_CSV', 'The data looks binary (many NUL bytes)', { file: input });
      sampleOk = isUtf8(view);
    } finally {
      closeSync(fd);
    }
  }
  // Names as they may be shown: a header that ran on into the rows would name patient IDs (src/parse/header.ts).
  const shown = header ? shownNames(header) : { names: [], extras: [] };
  return { dataset, input, bytes: size, columns: shown.names, extra_columns: shown.extras, empty: !header || size <= header.dataOffset, sample_utf8: sampleOk };
}
