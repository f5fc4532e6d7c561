/**
 * Curated Parquet schemas (SPEC §3): DATE as a Parquet DATE (INT32), numbers
 * as DOUBLE, strings as UTF-8 byte arrays.
 */
import type { Dataset } from '../registry.js';

interface Element {
  name: string;
  type?: 'BYTE_ARRAY' | 'INT32' | 'DOUBLE';
  converted_type?: 'UTF8' | 'DATE';
  logical_type?: { type: 'STRING' } | { type: 'DATE' };
  repetition_type?: 'REQUIRED' | 'OPTIONAL';
  num_children?: number;
}

const str = (name: string, optional = false): Element => ({
  name,
  type: 'BYTE_ARRAY',
  converted_type: 'UTF8',
  logical_type: { type: 'STRING' },
  repetition_type: optional ? 'OPTIONAL' : 'REQUIRED',
});
const dbl = (name: string, optional = false): Element => ({ name, type: 'DOUBLE', repetition_type: optional ? 'OPTIONAL' : 'REQUIRED' });
const date = (name: string): Element => ({ name, type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' }, repetition_type: 'REQUIRED' });

const FIELDS: Record<Dataset, Element[]> = {
  vitals: [
    str('hospital_id'), str('patient_key'), date('measurement_date'), str('month'), str('vital_type'),
    dbl('value'), str('unit'), str('source_value'), str('source_unit'), str('flag', true),
  ],
  labs: [
    str('hospital_id'), str('patient_key'), date('test_date'), str('month'), str('test_type'),
    dbl('value'), str('unit'), dbl('ref_low', true), dbl('ref_high', true), str('flag'), str('source_value'), str('source_unit'),
  ],
};

export function curatedSchema(dataset: Dataset): Element[] {
  const fields = FIELDS[dataset];
  return [{ name: 'root', num_children: fields.length }, ...fields];
}

export const curatedColumns = (dataset: Dataset): string[] => FIELDS[dataset].map((f) => f.name);
