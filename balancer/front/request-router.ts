// Which service's runtime takes a request or an upgrade. With --routing
// routes the route table decides by host and path, and a request that no
// route matches is answered 404 here; otherwise the one service takes all.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { matchRoute, requestHost, type RouteTable, type RouteTarget } from '../discovery/route-table.ts';
import { rawAnswer } from '../proxy/raw-answer.ts';

/** One service's HTTP path and tunnels: what a request is handed to. */
export interface RequestTaker {
  readonly proxy: { handle(req: IncomingMessage, res: ServerResponse, target?: RouteTarget): void };
  readonly tunnels: { handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target?: RouteTarget): void };
}

/** The public listener's two handlers. */
export interface RequestHandlers {
  request: (req: IncomingMessage, res: ServerResponse) => void;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** Without routes: every request and upgrade goes to the one service. */
export function singleServiceHandlers(only: RequestTaker): RequestHandlers {
  return {
    request: (req, res) => only.proxy.handle(req, res),
    upgrade: (req, socket, head) => only.tunnels.handleUpgrade(req, socket, head),
  };
}

export interface RoutedServices {
  routes(): RouteTable;
  runtime(service: string): RequestTaker | undefined;
  /** A request matched no route (the sempre_no_route counter). */
  countNoRoute(): void;
}

/** With --routing routes: each request to the service whose route matches its host and path. */
export function routedHandlers(services: RoutedServices): RequestHandlers {
  const notFound = (host: string, path: string) => {
    services.countNoRoute();
    return `no route for host "${host || '(none)'}" and path "${path.slice(0, 200)}": no service declares one that matches (GET /_sempre/status on the admin port lists the routes)`;
  };
  return {
    request: (req, res) => {
      const found = route(services, req);
      if (found.found) return found.runtime.proxy.handle(req, res, found.target);
      const body = `404 Not Found: ${notFound(found.host, found.path)}\n`;
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
    },
    upgrade: (req, socket, head) => {
      const found = route(services, req);
      if (found.found) return found.runtime.tunnels.handleUpgrade(req, socket, head, found.target);
      rawAnswer(socket, 404, 'Not Found', notFound(found.host, found.path));
    },
  };
}

/** The runtime and route for a request, or what it asked for when no route matches. */
function route(services: RoutedServices, req: IncomingMessage) {
  const host = requestHost(req.headers.host ?? (req.headers[':authority'] as string | undefined));
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  const target = matchRoute(services.routes(), host, query < 0 ? url : url.slice(0, query));
  const runtime = target && services.runtime(target.service);
  return runtime && target ? { found: true as const, runtime, target } : { found: false as const, host, path: query < 0 ? url : url.slice(0, query) };
}
