/**
 * src/stdio.ts: a stream made best effort drops what it cannot write, whether
 * the failure is an 'error' event (pipes, and files through Node's
 * SyncWriteStream) or a throw from `write`. The CLI end to end, with a closed
 * or full stdout and stderr, is in commands.test.ts.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { bestEffort } from '../src/stdio.js';

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('bestEffort', () => {
  it.each<[string, (chunk: unknown, enc: BufferEncoding, cb: (e?: Error | null) => void) => void]>([
    ['a write that throws', () => {
      throw enospc();
    }],
    ['a write that fails through its callback (an error event)', (_c, _e, cb) => cb(enospc())],
  ])('%s: nothing thrown or unhandled, the first failure told once', async (_, write) => {
    const stream = new Writable({ write });
    const told: string[] = [];
    bestEffort(stream, (e) => told.push(e.code ?? e.message));
    expect(() => {
      stream.write('a\n');
      stream.write('b\n');
    }).not.toThrow();
    // An 'error' event arrives on a later tick; one without a listener would be thrown there.
    await new Promise((r) => setTimeout(r, 10));
    expect(told).toEqual(['ENOSPC']);
  });

  it('an onError that throws is contained', () => {
    const stream = new Writable({
      write: () => {
        throw enospc();
      },
    });
    bestEffort(stream, () => {
      throw new Error('the logger is broken too');
    });
    expect(() => stream.write('a\n')).not.toThrow();
  });
});
