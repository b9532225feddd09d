// The admin listener: /_sempre/status (JSON for people and scripts),
// /metrics (Prometheus text) and /healthz (the balancer's own liveness).
import { createServer, type Server } from 'node:http';
import type { BalancerMetrics } from './metrics.ts';

export function createAdminServer(status: () => unknown, metrics: BalancerMetrics): Server {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/_sempre/status') {
      const body = `${JSON.stringify(status(), null, 2)}\n`;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /_sempre/status or /metrics\n');
  });
}
