/**
 * Serve GET /metrics while the run goes on (`--metrics-port`). Bound to
 * 127.0.0.1 by default: the metrics are for a local Prometheus or a sidecar,
 * never for the open network.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PipelineMetrics } from './registry.js';

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Start an HTTP server answering `GET /metrics` from the registry.
 * @param port 0 picks a free port; the chosen one is returned.
 */
export function serveMetrics(m: PipelineMetrics, port: number, host = '127.0.0.1'): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    m.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': m.registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`metrics collection failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  // A scrape must never keep the batch process alive once it is done.
  server.unref();

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}
