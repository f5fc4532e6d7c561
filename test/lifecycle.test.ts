/**
 * The interrupt message (src/lifecycle.ts): until the command's first commit
 * the previous output stays; after it, the message says what this run
 * committed and what it did not.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { interruptMessage, type Part } from '../src/lifecycle.js';
import { ROOT } from './helpers.js';

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

describe('a signal once the summary is written (finished)', () => {
  // The built module, in a process of its own: its handlers are the process's.
  const lifecycle = JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'src', 'lifecycle.js')).href);
  const run = () =>
    spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        [
          `const { finished, installSignalHandlers, onInterrupt } = await import(${lifecycle});`,
          "installSignalHandlers((m, code) => process.stdout.write(`interrupted ${code}\\n`));",
          "onInterrupt(() => process.stdout.write('cleanup\\n'));",
          "process.stdout.write('summary 3\\n');",
          'finished(3);',
          // Still running (as while stdout takes the summary): the handler gets to run. Exit once it has logged
          // (a fixed wait failed on a loaded machine whose first loop turn came late), or after 10 s without.
          "const done = () => { process.stdout.write('exit\\n'); process.exit(3); };",
          'const write = process.stderr.write.bind(process.stderr);',
          'process.stderr.write = (...a) => { const r = write(...a); setImmediate(done); return r; };',
          'setTimeout(done, 10_000);',
          "process.kill(process.pid, 'SIGTERM');",
        ].join('\n'),
      ],
      { encoding: 'utf8' },
    );

  it('is logged and ignored: no interrupted summary, no cleanups, the exit code stays the summary\'s', () => {
    const r = run();
    expect(r.stdout).toBe('summary 3\nexit\n');
    expect(r.stderr).toBe('SIGTERM after the summary was written: ignored (exit code 3)\n');
    expect(r.status).toBe(3);
  });
});
