// The admin listener (loopback unless asked otherwise):
//   /dashboard/           the live dashboard (static files built by Vite)
//   /_sempre/stream       server-sent events: a dashboard snapshot every second
//   /_sempre/dashboard    the same snapshot once, as JSON
//   /_sempre/status       routing status for people and scripts (JSON)
//   /_sempre/instances/ID/maintenance   POST {enable, reason}: needs the control token
//   /metrics              Prometheus text;  /healthz: the balancer's own liveness
import { timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import type { Logger } from '../../shared/logger.ts';
import type { BalancerMetrics } from './metrics.ts';

export interface AdminHandlers {
  status: () => unknown;
  /** The dashboard's view of one service (the first one when not named). */
  snapshot: (service?: string) => unknown;
  /** The services this balancer routes to (one unless --routing routes). */
  services?: () => string[];
  metrics: BalancerMetrics;
  token: string;
  setMaintenance: (instanceId: string, enable: boolean, reason: string, service?: string) => Promise<'ok' | 'unknown-instance'>;
  dashboardDir: string;
  logger: Logger;
  pushIntervalMs?: number;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json' };

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) }).end(text);
}

function tokenMatches(req: IncomingMessage, token: string): boolean {
  const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readJson(req: IncomingMessage, limit = 4096): Promise<unknown> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new Error('body too large');
  }
  return body ? JSON.parse(body) : {};
}

function serveStatic(res: ServerResponse, root: string, path: string): void {
  if (!existsSync(join(root, 'index.html'))) {
    res.writeHead(503, { 'content-type': 'text/plain' }).end('dashboard not built: run `npm run build:dashboard` (./sempre up does it)\n');
    return;
  }
  const relative = normalize(decodeURIComponent(path.replace(/^\/dashboard\/?/, '')) || 'index.html');
  const file = join(root, relative);
  if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const immutable = relative.startsWith(`assets${sep}`);
  res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache' });
  createReadStream(file).pipe(res);
}

export function createAdminServer(handlers: AdminHandlers): Server {
  // Each stream follows one service (?service=, the dashboard's selector).
  const streams = new Map<ServerResponse, string | undefined>();
  const push = setInterval(() => {
    if (streams.size === 0) return;
    const frames = new Map<string | undefined, string>();
    for (const [stream, service] of streams) {
      let frame = frames.get(service);
      if (frame === undefined) frames.set(service, (frame = `data: ${JSON.stringify(handlers.snapshot(service))}\n\n`));
      stream.write(frame);
    }
  }, handlers.pushIntervalMs ?? 1000);
  push.unref();

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const maintenance = /^\/_sempre\/instances\/([^/]+)\/maintenance$/.exec(path);
    if (maintenance && req.method === 'POST') {
      if (!tokenMatches(req, handlers.token)) {
        json(res, 401, { error: 'a valid control token is required (Authorization: Bearer TOKEN); the balancer logs it at start or reads --admin-token' });
        return;
      }
      const id = decodeURIComponent(maintenance[1]!);
      readJson(req).then(async (body) => {
        const { enable, reason } = (body ?? {}) as { enable?: unknown; reason?: unknown };
        if (typeof enable !== 'boolean') return json(res, 400, { error: 'body must be {"enable": true|false, "reason": "…"}' });
        const text = typeof reason === 'string' && reason.trim() ? reason.trim().slice(0, 200) : 'maintenance';
        const result = await handlers.setMaintenance(id, enable, text, url.searchParams.get('service') ?? undefined);
        if (result === 'unknown-instance') return json(res, 404, { error: `no instance ${id} in Consul` });
        handlers.logger.warn({ instance: id, enable, reason: text, from: req.socket.remoteAddress }, 'maintenance set from the dashboard');
        return json(res, 200, { ok: true, instance: id, maintenance: enable });
      }).catch((error: unknown) => json(res, 502, { error: `could not reach Consul: ${error instanceof Error ? error.message : String(error)}` }));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/') {
      res.writeHead(302, { location: '/dashboard/' }).end();
    } else if (path === '/dashboard' || path.startsWith('/dashboard/')) {
      serveStatic(res, handlers.dashboardDir, path);
    } else if (path === '/_sempre/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      const service = url.searchParams.get('service') ?? undefined;
      res.write(`retry: 2000\ndata: ${JSON.stringify(handlers.snapshot(service))}\n\n`);
      streams.set(res, service);
      req.on('close', () => streams.delete(res));
    } else if (path === '/_sempre/dashboard') {
      json(res, 200, handlers.snapshot(url.searchParams.get('service') ?? undefined));
    } else if (path === '/_sempre/status') {
      json(res, 200, handlers.status());
    } else if (path === '/metrics') {
      handlers.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': handlers.metrics.registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /dashboard/, /_sempre/status or /metrics\n');
    }
  });
  server.on('close', () => {
    clearInterval(push);
    for (const stream of streams.keys()) stream.end();
  });
  return server;
}
