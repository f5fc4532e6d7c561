/**
 * One generated record as plain fields, and its CSV line in the column
 * order of SPEC §1 (registry COLUMNS).
 */

import type { Dataset } from '../registry.js';
import { csvField, quoted } from './format.js';

/** A record being generated. Sources fill it; defects may overwrite fields. */
export interface Row {
  hospital: string;
  date: string;
  patient: string;
  type: string;
  value: string;
  unit: string;
  /** Labs only. */
  ref: string;
  /** Index of the measure in the registry's specs for the dataset. */
  measure: number;
  /** Index of the hospital profile. */
  hospitalIndex: number;
  /** The hospital's exporter quotes every text field. */
  quoteAll: boolean;
  /** Quote the unit (bit 1) / reference range (bit 2) although it needs no quotes. */
  quoteMask: number;
}

export const QUOTE_UNIT = 1;
export const QUOTE_REF = 2;

export function emptyRow(): Row {
  return { hospital: '', date: '', patient: '', type: '', value: '', unit: '', ref: '', measure: 0, hospitalIndex: 0, quoteAll: false, quoteMask: 0 };
}

/** The row's fields in file order (for defects that drop or add a field). */
export function fieldsOf(dataset: Dataset, r: Row): string[] {
  return dataset === 'vitals'
    ? [r.hospital, r.date, r.patient, r.type, r.value, r.unit]
    : [r.hospital, r.date, r.patient, r.type, r.value, r.ref, r.unit];
}

/**
 * The line of a clean row: its fields are known to need no escaping, so this
 * is plain concatenation (the hot path).
 */
export function cleanLine(dataset: Dataset, r: Row): string {
  if (r.quoteAll) {
    const head = '"' + r.hospital + '","' + r.date + '","' + r.patient + '","' + r.type + '",' + r.value + ',"';
    return dataset === 'vitals' ? head + r.unit + '"\n' : head + r.ref + '","' + r.unit + '"\n';
  }
  const unit = r.quoteMask & QUOTE_UNIT ? '"' + r.unit + '"' : r.unit;
  const head = r.hospital + ',' + r.date + ',' + r.patient + ',' + r.type + ',' + r.value + ',';
  if (dataset === 'vitals') return head + unit + '\n';
  const ref = r.quoteMask & QUOTE_REF ? '"' + r.ref + '"' : r.ref;
  return head + ref + ',' + unit + '\n';
}

/** The line of arbitrary fields, quoted where the content requires it (or everywhere for quote-all exporters). */
export function escapedLine(fields: readonly string[], quoteAll: boolean, numericField: number): string {
  let out = '';
  for (let i = 0; i < fields.length; i++) {
    if (i > 0) out += ',';
    out += quoteAll && i !== numericField ? quoted(fields[i]) : csvField(fields[i]);
  }
  return out + '\n';
}
