/**
 * The interrupt message (src/lifecycle.ts): until the command's first commit
 * the previous output stays; after it, the message says what this run
 * committed and what it did not.
 */
import { describe, expect, it } from 'vitest';
import { interruptMessage, type Part } from '../src/lifecycle.js';

const part = (name: string, done: boolean, partly?: string): Part => ({ name, done, ...(partly !== undefined && { partly }) });

describe('interruptMessage', () => {
  it.each<[string, Part[], string[], string]>([
    ['nothing planned', [], [], "interrupted by SIGTERM: removing this run's partial output; the previous output stays"],
    ['nothing committed yet', [part('vitals', false)], ['metrics not pushed'], "interrupted by SIGTERM: removing this run's partial output; the previous output stays"],
    ['process, during the push', [part('vitals', true)], ['metrics not pushed'], 'interrupted by SIGTERM after committing vitals; metrics not pushed'],
    ['process, after its commit', [part('vitals', true)], [], 'interrupted by SIGTERM after committing vitals'],
    ['generate, between its datasets', [part('vitals', true), part('labs', false)], [], 'interrupted by SIGTERM after committing vitals; labs not written'],
    [
      'run, between its datasets',
      [part('vitals', true), part('labs', false), part('the statistics', false), part('the report', false)],
      ['metrics not pushed'],
      'interrupted by SIGTERM after committing vitals; labs, the statistics and the report not written; metrics not pushed',
    ],
    [
      'run, during the push',
      [part('vitals', true), part('labs', true), part('the statistics', true), part('the report', true)],
      ['metrics not pushed', 'metrics file not written'],
      'interrupted by SIGTERM after committing the output; metrics not pushed; metrics file not written',
    ],
    [
      'run, between two hospitals of labs',
      [part('vitals', true), part('labs', false, '2 of 5 hospitals committed, the others not: run it again'), part('the statistics', false), part('the report', false)],
      [],
      'interrupted by SIGTERM after committing vitals and while committing labs (2 of 5 hospitals committed, the others not: run it again); the statistics and the report not written',
    ],
    [
      'process, between two hospitals',
      [part('vitals', false, '1 of 3 hospitals committed, the others not: run it again')],
      ['metrics not pushed'],
      'interrupted by SIGTERM while committing vitals (1 of 3 hospitals committed, the others not: run it again); metrics not pushed',
    ],
    ['partition, during the push', [part('the vitals split', true)], ['metrics not pushed'], 'interrupted by SIGTERM after committing the vitals split; metrics not pushed'],
  ])('%s', (_what, parts, after, message) => {
    expect(interruptMessage('SIGTERM', parts, after)).toBe(message);
  });
});
