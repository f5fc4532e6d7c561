/**
 * A stand-in Prometheus Pushgateway for the tests, with the real one's
 * semantics where they matter to us:
 *
 *   PUT    /metrics/job/<job>/<label>/<value>…  replaces the whole group
 *   POST   (same path)                          replaces the metric names sent, keeps the others
 *   DELETE (same path)                          removes the group
 *   GET    /api/v1/metrics                      every group with its series (JSON, as the gateway's API)
 *
 * and, like the real one, it answers 400 to a sample whose label disagrees
 * with a grouping label of its group. It keeps every request it was sent.
 * Told to, it answers every request with an error page instead (a gateway
 * behind a proxy that is down).
 *
 * `delayMs` makes it answer each request that long after it arrived, and
 * `hang` never (the connection stays open until `close`): a slow or stuck
 * gateway. `onRequest` is told of each request as it arrives.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PushedSample {
  /** The group's path, e.g. `/metrics/job/healthcare_pipeline/dataset/vitals/hospital_id/H1`. */
  group: string;
  name: string;
  /** The sample's labels with the group's grouping labels added (as Prometheus sees them with honor_labels). */
  labels: Record<string, string>;
  value: number;
}

export interface FakePushgateway {
  readonly url: string;
  readonly requests: { method: string; path: string; body: string }[];
  /** Every request as it arrived (`GET /api/v1/metrics` too): method and raw URL, query and all. */
  readonly received: string[];
  /** Group path → metric family name → sample lines, as last pushed. */
  readonly groups: Map<string, Map<string, string[]>>;
  /** Every sample the gateway holds, optionally of one series name only. */
  samples(name?: string): PushedSample[];
  close(): Promise<void>;
}

/** The grouping labels of a push path (plain and `@base64` segments). */
export function groupingLabels(path: string): Record<string, string> {
  const parts = path.replace(/^\/metrics\//, '').split('/');
  const labels: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const [name, enc] = parts[i].split('@');
    const raw = parts[i + 1];
    labels[name] = enc === 'base64' ? (raw === '=' ? '' : Buffer.from(raw, 'base64url').toString('utf8')) : decodeURIComponent(raw);
  }
  return labels;
}

function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const l of (text ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  return labels;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;

/** Exposition text → family name → sample lines (a histogram's _bucket/_sum/_count lines under its family). */
function families(body: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const line of body.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) {
      current = type[1];
      out.set(current, out.get(current) ?? []);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const name = SAMPLE.exec(line)?.[1] ?? '';
    const family = current && name.startsWith(current) ? current : name;
    out.set(family, [...(out.get(family) ?? []), line]);
  }
  return out;
}

export interface FakePushgatewayOptions {
  /** Answer every request with this status and body (Content-Type text/html). */
  errorPage?: { status: number; body: string };
  delayMs?: number;
  hang?: boolean;
  onRequest?: (method: string, path: string) => void;
}

/** Starts the fake on 127.0.0.1 (a free port). */
export async function startFakePushgateway(options: FakePushgatewayOptions = {}): Promise<FakePushgateway> {
  const opts = options;
  const requests: FakePushgateway['requests'] = [];
  const received: string[] = [];
  const groups = new Map<string, Map<string, string[]>>();

  const samplesOf = (group: string, lines: string[]): PushedSample[] =>
    lines.map((line) => {
      const m = SAMPLE.exec(line)!;
      return { group, name: m[1], labels: { ...parseLabels(m[2]), ...groupingLabels(group) }, value: Number(m[3]) };
    });

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    // On arrival, before `hang` or `delayMs`: a request the fake never answers was still sent.
    received.push(`${req.method} ${req.url}`);
    opts.onRequest?.(req.method!, (req.url ?? '/').split('?')[0]);
    if (opts.hang) return;
    req.on('end', () => (opts.delayMs ? setTimeout(answer, opts.delayMs) : answer()));
    const answer = () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (options.errorPage) {
        res.writeHead(options.errorPage.status, { 'Content-Type': 'text/html' }).end(options.errorPage.body);
        return;
      }
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/api/v1/metrics') {
        const data = [...groups].map(([group, fams]) => ({
          labels: groupingLabels(group),
          ...Object.fromEntries(
            [...fams].map(([name, lines]) => [name, { metrics: samplesOf(group, lines).map((s) => ({ labels: s.labels, value: String(s.value) })) }]),
          ),
        }));
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'success', data }));
        return;
      }
      requests.push({ method: req.method!, path, body });
      if (!path.startsWith('/metrics/job/')) {
        res.writeHead(404).end();
        return;
      }
      if (req.method === 'DELETE') {
        groups.delete(path);
        res.writeHead(202).end();
        return;
      }
      const sent = families(body);
      const key = groupingLabels(path);
      for (const line of [...sent.values()].flat()) {
        for (const [k, v] of Object.entries(parseLabels(SAMPLE.exec(line)?.[2]))) {
          if (k in key && key[k] !== v) {
            res.writeHead(400).end(`pushed metrics are invalid or inconsistent with existing metrics: ${k}="${v}" differs from the grouping label`);
            return;
          }
        }
      }
      if (req.method === 'PUT') groups.set(path, sent);
      else if (req.method === 'POST') groups.set(path, new Map([...(groups.get(path) ?? []), ...sent]));
      else {
        res.writeHead(405).end();
        return;
      }
      res.writeHead(200).end();
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    received,
    groups,
    samples: (name) => [...groups].flatMap(([group, fams]) => [...fams.values()].flatMap((lines) => samplesOf(group, lines))).filter((s) => name === undefined || s.name === name),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
