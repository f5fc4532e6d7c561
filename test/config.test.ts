import { afterEach, describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { defaultWorkers, MAX_WORKERS, parseCli, resolveKey } from '../src/config.js';
import { DEMO_KEY } from '../src/transform/pseudonym.js';

const KNOBS = ['HCP_MAX_BUFFERED_ROWS', 'HCP_DEDUPE_FILTER_BITS', 'HCP_PSEUDONYM_KEY'] as const;
const saved = Object.fromEntries(KNOBS.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const k of KNOBS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe('test knobs from the environment, settled in the config', () => {
  it.each<[string, Partial<Record<(typeof KNOBS)[number], string>>, number, number | null]>([
    ['unset: the defaults', {}, 400_000, null],
    ['both set', { HCP_MAX_BUFFERED_ROWS: '16', HCP_DEDUPE_FILTER_BITS: '512' }, 16, 512],
    ['zero is unset', { HCP_MAX_BUFFERED_ROWS: '0', HCP_DEDUPE_FILTER_BITS: '0' }, 400_000, null],
    ['not a number is unset', { HCP_MAX_BUFFERED_ROWS: 'lots', HCP_DEDUPE_FILTER_BITS: '' }, 400_000, null],
  ])('%s', (_, env, maxBufferedRows, dedupeFilterBits) => {
    for (const k of KNOBS) delete process.env[k];
    Object.assign(process.env, env);
    const { config } = parseCli(['process', '--dataset', 'vitals', '--input', 'x.csv']);
    expect(config.maxBufferedRows).toBe(maxBufferedRows);
    expect(config.dedupeFilterBits).toBe(dedupeFilterBits);
  });
});

describe('HCP_DEDUPE_FILTER_BITS: a power of two from 512 (one block) to 2^27 (the largest filter the engine sizes)', () => {
  // 1e12 and 1099511627776 ended in internal errors (exit 1) when the filter was made: "filter bits must be a power
  // of two", "Invalid typed array length"; 256 silently made a 512-bit filter, and "lots" silently none.
  it.each<[string, number | null]>([
    ['512', 512],
    ['1024', 1024],
    ['134217728', 2 ** 27],
    ['0', null],
    ['', null],
    ['1e12', NaN],
    ['1099511627776', NaN],
    ['768', NaN],
    ['256', NaN],
    ['511', NaN],
    [String(2 ** 28), NaN],
    [String(2 ** 53), NaN],
    ['0x200', NaN],
    ['512.0', NaN],
    ['-512', NaN],
    [' 512', NaN],
    ['lots', NaN],
  ])('%j', (value, want) => {
    for (const k of KNOBS) delete process.env[k];
    process.env.HCP_DEDUPE_FILTER_BITS = value;
    if (!Number.isNaN(want)) {
      expect(parseCli(['process']).config.dedupeFilterBits).toBe(want);
      return;
    }
    let error: any = null;
    try {
      parseCli(['process']);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'HCP_ERR_USAGE', exitCode: 2, context: { option: 'HCP_DEDUPE_FILTER_BITS' } });
    expect(error.message).toBe(`HCP_DEDUPE_FILTER_BITS must be a power of two from 512 to 134217728 (got "${value}")`);
  });

  // Only process and run filter duplicates: a bad value stopped `validate`, `stats`, `generate` and `--help` too.
  it.each<[string[], boolean]>([
    [['process'], true],
    [['run'], true],
    [['validate'], false],
    [['stats'], false],
    [['generate'], false],
    [['partition', '--help'], false],
    [['process', '--help'], false],
    [['run', '-h'], false],
  ])('%j with a bad value: refused %s', (argv, refused) => {
    for (const k of KNOBS) delete process.env[k];
    process.env.HCP_DEDUPE_FILTER_BITS = 'lots';
    if (refused) expect(() => parseCli(argv)).toThrow(/HCP_DEDUPE_FILTER_BITS must be a power of two/);
    else expect(parseCli(argv).config.dedupeFilterBits).toBeNull();
  });
});

describe('options with no sane meaning are usage errors (exit 2), naming the option', () => {
  it.each<[string, string[], RegExp]>([
    ['a chunk larger than a buffer can be', ['--chunk-size', '10000000000'], /--chunk-size must be an integer from 1024 to 1073741824/],
    ['a chunk just over 1 GiB', ['--chunk-size', String(2 ** 30 + 1)], /--chunk-size/],
    ['a record limit larger than a buffer can be', ['--max-record-bytes', '99999999999999999999'], /--max-record-bytes/],
    ['an empty --out (would mean the current directory)', ['--out='], /--out must not be empty/],
    ['an empty --landing', ['--landing', ''], /--landing must not be empty/],
    ['a --pushgateway URL that does not parse', ['--pushgateway', 'http://[::1'], /--pushgateway must be an http\(s\) URL/],
    ['an empty --metrics-file (silently no metrics file)', ['--metrics-file='], /--metrics-file must not be empty/],
    ['an empty --input', ['--input='], /--input must not be empty/],
    // node:util's own message, whole: its first line alone ("argument is ambiguous") does not say what to do.
    ['a negative value after a space', ['--workers', '-1'], /ambiguous\. Did you forget to specify the option argument for '--workers'\? .*'--workers=-XYZ'/],
    ['an option missing its value', ['--out', '--workers', '2'], /Did you forget to specify the option argument for '--out'\?/],
    ['an empty --labs', ['--labs='], /--labs must not be empty/],
    ['a --pushgateway URL with a bad port', ['--pushgateway', 'http://localhost:99999'], /--pushgateway must be an http\(s\) URL/],
    // Thousands of worker threads ended in V8's "Fatal process OOM" abort (exit 133), not a usage error.
    ['--workers above the cap', ['--workers', '65'], /--workers must be an integer from 1 to 64 \(got "65"\)/],
    ['--workers 100000', ['--workers=100000'], /--workers must be an integer from 1 to 64/],
    // A value option given twice silently kept the last; a flag may repeat.
    ['--out twice', ['--out', 'a', '--out=b'], /--out is given more than once/],
    ['--vitals twice, same value', ['--vitals', 'v.csv', '--vitals', 'v.csv'], /--vitals is given more than once/],
  ])('%s', (_, args, message) => {
    let error: any = null;
    try {
      parseCli(['run', ...args]);
    } catch (e) {
      error = e;
    }
    expect(error?.code).toBe('HCP_ERR_USAGE');
    expect(error?.exitCode).toBe(2);
    expect(error?.message).toMatch(message);
  });

  // A URL with credentials passed this check, could never work (fetch refuses it) and its password was printed in
  // three warnings; a query or fragment swallowed the group path appended to it, and every push "succeeded".
  it.each<[string, string, RegExp]>([
    ['credentials', 'http://user:s3cret@127.0.0.1:9091', /--pushgateway must not hold credentials/],
    ['a user alone', 'https://s3cret@gw.example.org', /--pushgateway must not hold credentials/],
    ['a query', 'http://127.0.0.1:9091/gw?token=s3cret', /--pushgateway must not have a query or a fragment/],
    ['a fragment', 'http://127.0.0.1:9091/gw#s3cret', /--pushgateway must not have a query or a fragment/],
    ['an empty query', 'http://127.0.0.1:9091/?', /--pushgateway must not have a query or a fragment/],
    ['credentials and a bad port', 'http://user:s3cret@localhost:99999', /--pushgateway must be an http\(s\) URL \(got "http:\/\/\*\*\*"\)/],
    ['credentials with a slash (no URL)', 'http://user:s3/cret@localhost', /--pushgateway must be an http\(s\) URL/],
    ['credentials without a scheme', 'user:s3cret@localhost:9091', /--pushgateway must be an http\(s\) URL \(got "\*\*\*"\)/],
  ])('a --pushgateway URL with %s: a usage error that never shows the secret', (_, url, message) => {
    let error: any = null;
    try {
      parseCli(['run', '--pushgateway', url]);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'HCP_ERR_USAGE', exitCode: 2, context: { option: 'pushgateway' } });
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/s3|cret/);
  });

  it.each(['http://127.0.0.1:9091', 'https://gw.example.org/pushgateway/', 'http://[::1]:9091'])('--pushgateway %s is accepted', (url) => {
    expect(parseCli(['run', '--pushgateway', url]).config.pushgateway).toBe(url);
  });

  it.each<[string[], Partial<{ chunkSize: number; maxRecordBytes: number; out: string; workers: number }>]>([
    [['--chunk-size', String(2 ** 30)], { chunkSize: 2 ** 30 }],
    [['--max-record-bytes', '1024'], { maxRecordBytes: 1024 }],
    [['--out', 'o'], { out: 'o' }],
    [[], { out: 'output', chunkSize: 2 << 20 }],
    [['--workers', '64'], { workers: 64 }],
    [['--workers', '1', '--no-progress', '--no-progress', '--debug', '--debug'], { workers: 1 }],
  ])('%j is accepted', (args, want) => {
    expect(parseCli(['run', ...args]).config).toMatchObject(want);
  });

  it.each([
    [1, 1],
    [2, 2],
    [64, 64],
    [65, 64],
    [512, 64],
  ])('the default worker count on %i cores is %i (the cores, at most the cap)', (cores, workers) => {
    expect(defaultWorkers(cores)).toBe(workers);
  });

  it('the default worker count is this machine\'s', () => {
    expect(parseCli(['run']).config.workers).toBe(defaultWorkers(availableParallelism()));
    expect(MAX_WORKERS).toBe(64); // the DAG's copy, dags/hcp_airflow/config.py ENGINE_MAX_WORKERS, is checked against this file
  });
});

describe('HCP_PSEUDONYM_KEY', () => {
  // Node decodes the environment as UTF-8, invalid bytes as U+FFFD: `a\xff\xfeb` and `a\xfd\xfcb` gave byte-identical
  // pseudonyms. A key of only white space was taken as it was. Both are exit 2 now, with or without --require-key.
  it.each<[string, string, boolean, RegExp | { key: string; demo: boolean }]>([
    ['invalid UTF-8 bytes (as Node decodes them)', 'a\uFFFD\uFFFDb', false, /not valid UTF-8 text.*hex or base64/],
    ['invalid UTF-8 bytes, --require-key', 'a\uFFFDb', true, /not valid UTF-8 text/],
    ['a binary key from /dev/urandom', Buffer.from([0x9f, 0x41, 0xc3, 0x28, 0xff, 0x80]).toString('utf8'), true, /not valid UTF-8 text/],
    ['spaces only', '   ', false, /only white space/],
    ['spaces only, --require-key', '   ', true, /only white space/],
    ['a tab and a newline', '\t\n', false, /only white space/],
    ['no-break spaces', '\u00a0\u00a0', false, /only white space/],
    ['a hex key', 'a3f1'.repeat(16), true, { key: 'a3f1'.repeat(16), demo: false }],
    ['text with spaces around it (kept as is)', ' k3y ', true, { key: ' k3y ', demo: false }],
    ['valid UTF-8 beyond ASCII', 'clé-secrète-🔑', true, { key: 'clé-secrète-🔑', demo: false }],
    ['unset', '', false, { key: DEMO_KEY, demo: true }],
  ])('%s', (_, key, requireKey, want) => {
    process.env.HCP_PSEUDONYM_KEY = key;
    if (!(want instanceof RegExp)) {
      expect(resolveKey(requireKey)).toEqual(want);
      return;
    }
    let error: any = null;
    try {
      resolveKey(requireKey);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'HCP_ERR_KEY_INVALID', exitCode: 2 });
    expect(error.message).toMatch(want);
  });
});
