/**
 * The Pushgateway's URL (`--pushgateway`): which ones can be used, and how
 * one is shown in a message. Pure, and free of prom-client, so that the
 * option parser can use it without loading the metrics code.
 */

/**
 * The URL as a message may show it: the scheme, host and path, with `***@` for
 * a `user:password@` part and `?…` / `#…` for a query or fragment (which may
 * hold a token), so no secret reaches a log. Cutting at the last `@` of the
 * string was not enough: an `@` in a query (`/?token=abc@SECRET`) took the
 * text after it along. So the parts shown are the parsed URL's, and a string
 * that does not parse as an http(s) URL, or holds an `@` the parser did not
 * read as ending credentials (a password with a `/`, `?` or `#` in it:
 * `http://admin:12/34@gw`, `http://admin:12?pw@gw`), shows its scheme only.
 */
export function redactUrl(url: string): string {
  // As typed (`HTTP://` stays so): the message is about the value given.
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const u = URL.canParse(url) ? new URL(url) : null;
  // An `@` the parser did not read as the end of a `user:password@` (it took a `?`, `#` or `/` inside the password
  // for the end of the host: `http://admin:12?pw@gw`) means the host shown would be part of the credentials.
  const stray = url.includes('@') && u !== null && u.username === '' && u.password === '' && !/^[a-z][a-z0-9+.-]*:\/\/@/i.test(url);
  if (!scheme || !u || !/^https?:$/.test(u.protocol) || u.pathname.includes('@') || stray) return `${scheme}***`;
  const userinfo = u.username !== '' || u.password !== '' ? '***@' : '';
  // From the string, not u.search/u.hash: an empty `?` or `#` is one too. The path ends at the first of them.
  const tail = /[?#]/.exec(url)?.[0] ?? '';
  // The parser's `/` for no path at all is not shown: `http://gw:9091` as typed.
  const path = u.pathname === '/' && !/[/\\]$/.test(url.split(/[?#]/)[0]) ? '' : u.pathname;
  return `${scheme}${userinfo}${u.host}${path}${tail && `${tail}…`}`;
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
