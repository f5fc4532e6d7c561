/**
 * src/metrics/url.ts: which --pushgateway URLs the engine takes, and how one is shown in a message. The table of
 * URLs is shared with the DAG's own load-time check (test/dags/test_helpers.py): a URL the DAG let through and the
 * engine refused failed every task with exit 2 (`HTTP://gw:9091`, `http://gw host:9091`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { pushgatewayUrlProblem, redactUrl } from '../src/metrics/url.js';

const TABLE = JSON.parse(readFileSync(new URL('./fixtures/pushgateway-urls.json', import.meta.url), 'utf8')) as { urls: [string, string | null][] };
const PROBLEM: Record<string, RegExp> = {
  http: /^must be an http\(s\) URL$/,
  credentials: /^must not hold credentials/,
  query: /^must not have a query or a fragment/,
};

describe('pushgatewayUrlProblem: the same verdicts as the DAG (test/fixtures/pushgateway-urls.json)', () => {
  it.each(TABLE.urls)('%j: %s', (url, verdict) => {
    const problem = pushgatewayUrlProblem(url);
    if (verdict === null) expect(problem).toBeNull();
    else expect(problem).toMatch(PROBLEM[verdict]);
  });
});

describe('redactUrl: no credentials, query or fragment in what a message shows', () => {
  it.each<[string, string, string[]]>([
    ['http://127.0.0.1:9091', 'http://127.0.0.1:9091', []],
    ['https://gw.example.org/pushgateway/', 'https://gw.example.org/pushgateway/', []],
    ['HTTP://gw:9091', 'HTTP://gw:9091', []], // the scheme as typed: the message is about that value
    ['http://user:s3cret@pgw:9091/gw', 'http://***@pgw:9091/gw', ['user', 's3cret']],
    ['https://s3cret@pgw', 'https://***@pgw', ['s3cret']],
    ['http://:s3cret@pgw', 'http://***@pgw', ['s3cret']],
    ['http://pgw:9091/gw?token=s3cret', 'http://pgw:9091/gw?…', ['token', 's3cret']],
    ['http://pgw:9091/gw#s3cret', 'http://pgw:9091/gw#…', ['s3cret']],
    ['http://pgw/gw?', 'http://pgw/gw?…', []],
    ['http://pgw?', 'http://pgw?…', []],
    ['http://pgw/', 'http://pgw/', []],
    // An `@` after a `?` or `#`: the cut at the last `@` of the string showed what followed it. Whether the `?`
    // starts a query or sits in a password (`http://admin:12?pw@gw`) cannot be told, so the scheme alone.
    ['http://gw:9091/?token=abc@SECRETTAIL', 'http://***', ['token', 'abc', 'SECRETTAIL']],
    ['http://gw/#frag@SECRET', 'http://***', ['frag', 'SECRET']],
    ['http://user:s3cret@gw/?t=x@SECRET', 'http://***@gw/?…', ['user', 's3cret', 'SECRET']],
    // A `?` or `#` inside the credentials ended the host early: the host shown was the user and part of the password.
    ['http://u#s3cret@gw', 'http://***', ['u', 's3cret', 'gw']],
    ['http://admin:1234?pw@gw:9091', 'http://***', ['admin', '1234', 'pw']],
    ['http://abc123#xyz@gw:9091', 'http://***', ['abc123', 'xyz']],
    ['http://@gw:9091', 'http://gw:9091', []], // an empty `@` holds nothing
    // A password with a `/` (not encoded) ends the host: what parses is not what was meant, so the scheme alone.
    ['http://admin:12/s3cret@gw', 'http://***', ['admin', '12', 's3cret']],
    // Strings that do not parse as http(s) URLs: the scheme alone.
    ['http://user:s3cret@localhost:99999', 'http://***', ['user', 's3cret', 'localhost']],
    ['http://user:s3/cret@localhost', 'http://***', ['user', 's3', 'cret']],
    ['http://gw host:9091/s3cret', 'http://***', ['gw', 's3cret']],
    ['user:s3cret@localhost:9091', '***', ['user', 's3cret']],
    ['ftp://user:s3cret@gw', 'ftp://***', ['user', 's3cret']],
    ['not a url s3cret', '***', ['s3cret']],
  ])('%j → %j', (url, shown, secrets) => {
    const out = redactUrl(url);
    expect(out).toBe(shown);
    for (const s of secrets) expect(out).not.toContain(s);
  });

  it.each(TABLE.urls.filter(([url]) => url.includes('s3cret')))('%j: no message about it shows the secret', (url) => {
    const problem = pushgatewayUrlProblem(url) ?? '';
    expect(`${problem} (got "${redactUrl(url)}")`).not.toMatch(/s3|cret/);
  });
});
