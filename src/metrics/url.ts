/**
 * The Pushgateway's URL (`--pushgateway`): which ones can be used, and how
 * one is shown in a message. Pure, and free of prom-client, so that the
 * option parser can use it without loading the metrics code.
 */

/**
 * The URL as a message may show it: a `user:password@` part and a query or
 * fragment (which may hold a token) are replaced, so no secret reaches a log.
 * Works on strings that are not URLs at all (everything up to the last `@`
 * goes, whatever it is).
 */
export function redactUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  let rest = url.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  if (at !== -1) rest = `***${rest.slice(at)}`;
  const q = rest.search(/[?#]/);
  if (q !== -1) rest = `${rest.slice(0, q + 1)}…`;
  return scheme + rest;
}

/**
 * Why `url` cannot be the Pushgateway's base URL, or null when it can:
 * - credentials: fetch refuses a URL that holds them ("Request cannot be
 *   constructed from a URL that includes credentials"), so no push could
 *   ever work, and a password on the command line shows in process
 *   listings and in every message that quotes the URL;
 * - a query or fragment: the group's path (`/metrics/job/…`) is appended to
 *   the URL, so it would land in the query or the fragment, and every push
 *   would go to the gateway's base path.
 */
export function pushgatewayUrlProblem(url: string): string | null {
  if (!/^https?:\/\/\S+$/.test(url) || !URL.canParse(url)) return 'must be an http(s) URL';
  const u = new URL(url);
  if (u.username !== '' || u.password !== '') {
    return 'must not hold credentials (user:password@): they cannot be sent and would show in process listings and logs';
  }
  if (/[?#]/.test(url)) return "must not have a query or a fragment: the engine appends each group's path (/metrics/job/…) to it";
  return null;
}
