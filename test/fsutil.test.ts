/**
 * The atomic-write helpers (src/sinks/fsutil.ts): a JSON file written in
 * pieces must be the same bytes as `JSON.stringify(value, null, 2)` of the
 * whole value.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonPieces, readJsonFiles, replacePath, restoreReplaced, writeJsonAtomicBy } from '../src/sinks/fsutil.js';
import { expectErrorCodeSync, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

// Plain JSON data (what JSON.parse gives back) and objects of it.
const plain = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const object = fc.dictionary(fc.string(), plain);
// Entries of the written property: unique keys that do not look like array indices (see writeJsonAtomicBy).
const entries = fc.uniqueArray(fc.tuple(fc.string().map((k) => `m${k}`), plain), { selector: ([k]) => k, maxLength: 12 });

describe('jsonPieces', () => {
  it('joined, is JSON.stringify of the whole value plus a newline, whatever the value, the property and its entries', () => {
    fc.assert(
      fc.property(object, fc.string(), entries, fc.boolean(), (value, key, list, present) => {
        // The property is written in its place among the others (first when it is new), or not at all when absent.
        const v: Record<string, unknown> = present ? { [key]: null, ...value } : value;
        const whole = Object.hasOwn(v, key) ? { ...v, [key]: Object.fromEntries(list) } : v;
        expect([...jsonPieces(v, key, list)].join('')).toBe(JSON.stringify(whole, null, 2) + '\n');
      }),
      { numRuns: 500 },
    );
  });

  it('takes the entries one at a time, as it writes them', () => {
    const taken: string[] = [];
    const months = function* () {
      for (let i = 1; i <= 3; i++) {
        const month = `2024-0${i}`;
        taken.push(month);
        yield [month, { values: [i] }] as [string, unknown];
      }
    };
    const pieces = jsonPieces({ version: 1, months: null, hospital_id: 'H001' }, 'months', months());
    const seen: string[] = [];
    for (const piece of pieces) {
      seen.push(piece);
      // No entry is taken before the pieces before it are out: the one being written is the last taken.
      const last = taken.at(-1);
      if (last) expect(seen.join('')).toContain(`"${last}"`);
    }
    expect(taken).toEqual(['2024-01', '2024-02', '2024-03']);
  });

  it('writeJsonAtomicBy writes those bytes and leaves no temp file', () => {
    const dir = tempDir();
    const path = join(dir, 'sketch.json');
    const value = { version: 1, months: {}, note: 'é "q"' };
    const list: [string, unknown][] = [
      ['2024-01', { a: [1, 2.5] }],
      ['2024-02', {}],
    ];
    writeJsonAtomicBy(path, value, 'months', list);
    expect(readFileSync(path, 'utf8')).toBe(JSON.stringify({ ...value, months: Object.fromEntries(list) }, null, 2) + '\n');
    expect(readdirSync(dir)).toEqual(['sketch.json']);
  });
});

describe('readJsonFiles', () => {
  it('skips a file removed between listing and reading (a concurrent commit deleting a sketch), reads the rest', () => {
    const dir = tempDir('hcp-readjson-');
    for (const n of ['a', 'b', 'c']) writeFileSync(join(dir, `${n}.json`), JSON.stringify({ n }));
    // `keep` runs on the listing, before any file is read: removing b there is the race, made deterministic.
    const got = readJsonFiles<{ n: string }>(dir, (f) => {
      if (f === 'b.json') rmSync(join(dir, f));
      return f.endsWith('.json');
    });
    expect(got).toEqual([
      { name: 'a.json', value: { n: 'a' } },
      { name: 'c.json', value: { n: 'c' } },
    ]);
  });

  it('still fails on a file it cannot parse, naming it', () => {
    const dir = tempDir('hcp-readjson-');
    writeFileSync(join(dir, 'a.json'), '{');
    const e = expectErrorCodeSync(() => readJsonFiles(dir), 'HCP_ERR_INTERNAL');
    expect(e.message).toContain(join(dir, 'a.json'));
    expect(e.cause).toBeInstanceOf(SyntaxError);
  });
});

describe('replacePath and restoreReplaced', () => {
  /** A target directory holding `old`, a staged one holding `new`, and where the old one goes aside. */
  const setUp = () => {
    const dir = tempDir();
    const target = join(dir, 'out', 'hospital_id=H001');
    const staged = join(dir, 'staging', 'curated', 'hospital_id=H001');
    const aside = join(dir, 'staging', 'replaced', '0');
    mkdirSync(target, { recursive: true });
    mkdirSync(staged, { recursive: true });
    writeFileSync(join(target, 'part.parquet'), 'old');
    writeFileSync(join(staged, 'part.parquet'), 'new');
    return { dir, target, staged, aside };
  };

  it('replaces the target, and leaves nothing aside', () => {
    const { dir, target, staged, aside } = setUp();
    replacePath(staged, target, aside);
    expect(readFileSync(join(target, 'part.parquet'), 'utf8')).toBe('new');
    expect(readdirSync(join(dir, 'staging', 'replaced'))).toEqual([]);
  });

  it('a failed second rename puts the old one back at once', () => {
    const { target, staged, aside } = setUp();
    rmSync(staged, { recursive: true });
    expect(() => replacePath(staged, target, aside)).toThrow(/ENOENT/);
    expect(readFileSync(join(target, 'part.parquet'), 'utf8')).toBe('old');
  });

  it('after a kill between the two renames, restoreReplaced puts the old one back; with the new one in place, it leaves it', () => {
    const { dir, target, aside } = setUp();
    // What a kill right after moving the old one aside leaves: the old one and its record, no target.
    mkdirSync(join(dir, 'staging', 'replaced'), { recursive: true });
    writeFileSync(`${aside}.target`, target);
    renameSync(target, aside);
    expect(restoreReplaced(join(dir, 'staging', 'replaced'))).toEqual([target]);
    expect(readFileSync(join(target, 'part.parquet'), 'utf8')).toBe('old');
    // Killed after the new one went in: nothing to restore.
    const again = setUp();
    mkdirSync(dirname(again.aside), { recursive: true });
    writeFileSync(join(dirname(again.aside), '1'), 'aside');
    writeFileSync(join(dirname(again.aside), '1.target'), again.target);
    expect(restoreReplaced(dirname(again.aside))).toEqual([]);
    expect(readFileSync(join(again.target, 'part.parquet'), 'utf8')).toBe('old');
    expect(restoreReplaced(join(dir, 'missing'))).toEqual([]);
  });
});
