// Wires the balancer together. With --routing service (the default) one
// service gets every request; with --routing routes every service whose
// agents declare routes is followed, and each request goes to the service
// whose route matches its host and path. Per service: a runtime (Consul
// watch, passive health, HTTP path, tunnels: service-runtime.ts). Around
// them: the public listener, the admin listener, the link between workers
// and graceful shutdown. This file only connects them.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Server as NetServer } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulClient } from '../shared/consul-client.ts';
import { combineLogOutput, type LogOutputStats } from '../shared/log-output.ts';
import type { Logger } from '../shared/logger.ts';
import { buildRouteTable, describeRoutes, EMPTY_ROUTES, matchRoute, requestHost, type RouteTable } from './discovery/route-table.ts';
import type { RoutingTable } from './discovery/routing-table.ts';
import { watchRoutedServices } from './discovery/service-list.ts';
import { createPublicServer, listen } from './front/public-server.ts';
import { createAdminServer } from './observe/admin.ts';
import { createMetrics } from './observe/metrics.ts';
import { logOutputStatus, type InstanceStatus } from './observe/status.ts';
import type { BalancerOptions } from './options.ts';
import { rawAnswer } from './proxy/raw-answer.ts';
import { startServiceRuntime, type ServiceRuntime } from './service-runtime.ts';
import { linkWorker, type WorkerSnapshot } from './worker-link.ts';

export type { InstanceStatus };

export interface BalancerDeps {
  consul: ConsulClient;
  logger: Logger;
  /** This process's log output: lines dropped while stdout is not read (none without). */
  logOutput?: () => LogOutputStats;
  /** Aborted to shut down gracefully. */
  stop: AbortSignal;
  /** This process's worker index with --workers (0 otherwise): worker 0 serves the admin port. */
  worker?: number;
  /** How many worker processes the balancer runs (--workers resolved, 0 being one per CPU; 1 without). */
  workers?: number;
  /** The listening sockets inherited from the main process (fds); without, the balancer binds --host/--port itself. */
  sockets?: { public: number; admin: number };
  /** Listening, and Consul answered (or the wait for it ended): the main process may retire the previous workers. */
  onReady?: () => void;
  now?: () => number;
}

/** Built by `npm run build:dashboard` (Vite) from dashboard/. */
const DASHBOARD_DIR = join(import.meta.dirname, '..', 'dashboard', 'dist');

/** How long a starting balancer waits for Consul's first answer before it listens anyway. */
const FIRST_ANSWER_WAIT_MS = 5000;
/**
 * A retiring worker (reload, or its main process gone) waits this long for the clients of its
 * keep-alive connections to take their `Connection: close` before it closes the rest: under load
 * every connection carries a request within it; one still idle after it is rarely used.
 */
const RETIRE_IDLE_GRACE_MS = 1000;

export async function runBalancer(options: BalancerOptions, deps: BalancerDeps): Promise<void> {
  const { consul, logger } = deps;
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const worker = deps.worker ?? 0;
  const isAdmin = worker === 0;
  const routed = options.routing === 'routes';
  const runtimes = new Map<string, ServiceRuntime>();
  let routes: RouteTable = EMPTY_ROUTES;
  let noRoute = 0;

  // Every worker and every balancer behind one address must share the key, or
  // a client's cookie names no instance on the next one (then it is rebound).
  const stickySecret = options.stickySecret || randomBytes(32).toString('base64url');
  if (!options.stickySecret && options.sticky !== 'off') logger.info('sticky-session key generated for this balancer: a second balancer behind the same address needs a shared --sticky-secret');

  const link = linkWorker({
    index: worker,
    onVerdict: (verdict, from) => runtimes.get(verdict.service)?.applyVerdict(verdict, from),
    report: (): WorkerSnapshot => ({ worker, services: Object.fromEntries([...runtimes].map(([service, runtime]) => [service, runtime.report()])), logOutput: deps.logOutput?.() }),
  });
  /** Every worker's log output together (each writes its own lines). */
  const logOutput = () => combineLogOutput([deps.logOutput?.(), ...link.others().map((w) => w.logOutput)]);
  const othersFor = (service: string) => link.others().flatMap((w) => (w.services[service] ? [w.services[service]] : []));

  const metrics = createMetrics({
    consulReachable: () => [...runtimes.values()].some((r) => r.watch.status().reachable) || (routed && serviceList?.reachable() === true),
    services: () => [...runtimes.values()].map((runtime) => ({
      service: runtime.service,
      instances: () => runtime.instanceCounts(),
      tableVersion: () => runtime.watch.table().version,
      failOpen: () => (runtime.failOpen.state().active && runtime.failOpen.state().served.length > 0 ? 1 : 0),
      tunnelsByInstance: () => Object.fromEntries(runtime.watch.table().instances.map((i) => [i.id, runtime.tunnels.openOn(i.id) + othersFor(runtime.service).reduce((n, s) => n + (s.instances[i.id]?.tunnels ?? 0), 0)])),
      proxy: () => {
        const others = othersFor(runtime.service);
        return others.length === 0 ? runtime.counters : runtime.counters.plus(others.map((s) => s.counters));
      },
    })),
    noRoute: () => noRoute,
    routeConflicts: () => routes.conflicts.length,
    logLinesDropped: () => logOutput().droppedLines,
  });

  // The route table is rebuilt whenever a routed service's instances change.
  let lastConflicts = '';
  const rebuildRoutes = () => {
    const tables = new Map<string, RoutingTable>([...runtimes].map(([service, runtime]) => [service, runtime.watch.table()]));
    const notPassing = new Map([...runtimes].map(([service, runtime]) => [service, runtime.catalog.instances().filter((c) => c.health !== 'passing')]));
    routes = buildRouteTable(routes, tables, notPassing);
    const conflicts = JSON.stringify(routes.conflicts);
    if (conflicts !== lastConflicts && routes.conflicts.length > 0) logger.warn({ conflicts: routes.conflicts }, 'two services declare the same route: the first by name serves it');
    lastConflicts = conflicts;
    for (const problem of routes.problems) logger.warn({ problem }, 'an instance declares a route that does not parse: ignored');
    logger.info({ version: routes.version, routes: describeRoutes(routes).map((r) => `${r.route} → ${r.service} (${r.instances.length})`) }, 'route table updated');
  };

  const addService = (service: string) => {
    if (runtimes.has(service)) return;
    runtimes.set(service, startServiceRuntime(service, options, {
      consul, logger, now, startedAt, isAdmin, stickySecret,
      // Services behind one host share the browser's cookie jar: one cookie each.
      stickyCookie: routed ? `${options.stickyCookie}_${service.replace(/[^A-Za-z0-9_-]/g, '_')}` : options.stickyCookie,
      metrics,
      share: (verdict) => link.share(verdict),
      others: () => othersFor(service),
      workers: deps.workers ?? 1,
      ...(routed ? { onTable: rebuildRoutes } : {}),
    }));
  };
  const removeService = (service: string) => {
    const runtime = runtimes.get(service);
    if (!runtime) return;
    runtimes.delete(service);
    runtime.stop();
    rebuildRoutes();
    // Requests already on their way finish; the pools close after them.
    setTimeout(() => void runtime.close(), options.shutdownTimeout).unref();
    logger.info({ service }, 'service no longer declares routes: not followed any more');
  };

  let serviceList: { reachable(): boolean; stop(): void } | undefined;
  if (routed) {
    let listReachable = false;
    const watch = watchRoutedServices({
      consul,
      waitMs: options.consulWait,
      onFailure: (message) => {
        listReachable = false;
        logger.warn({ err: message }, 'cannot read the service list from Consul; keeping the services already followed');
      },
      onChange: (services) => {
        listReachable = true;
        for (const service of services) addService(service);
        // A service that disappears from the list keeps serving what it had until
        // its own watch drops its instances; then it is let go.
        for (const service of [...runtimes.keys()]) if (!services.includes(service)) removeService(service);
        logger.info({ services }, 'routed services');
      },
    });
    serviceList = { reachable: () => listReachable, stop: () => watch.stop() };
  } else {
    addService(options.service);
  }
  const only = () => runtimes.get(options.service)!;

  /** The runtime and route for a request; answers 404 itself when no route matches. */
  const route = (req: IncomingMessage) => {
    const host = requestHost(req.headers.host ?? (req.headers[':authority'] as string | undefined));
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const target = matchRoute(routes, host, query < 0 ? url : url.slice(0, query));
    const runtime = target && runtimes.get(target.service);
    return runtime && target ? { found: true as const, runtime, target } : { found: false as const, host, path: query < 0 ? url : url.slice(0, query) };
  };
  const notFound = (host: string, path: string) => {
    noRoute += 1;
    return `no route for host "${host || '(none)'}" and path "${path.slice(0, 200)}": no service declares one that matches (GET /_sempre/status on the admin port lists the routes)`;
  };
  const onRequest = routed
    ? (req: IncomingMessage, res: ServerResponse) => {
      const found = route(req);
      if (found.found) return found.runtime.proxy.handle(req, res, found.target);
      const body = `404 Not Found: ${notFound(found.host, found.path)}\n`;
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
    }
    : (req: IncomingMessage, res: ServerResponse) => only().proxy.handle(req, res);
  const onUpgrade = routed
    ? (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const found = route(req);
      if (found.found) return found.runtime.tunnels.handleUpgrade(req, socket, head, found.target);
      rawAnswer(socket, 404, 'Not Found', notFound(found.host, found.path));
    }
    : (req: IncomingMessage, socket: Duplex, head: Buffer) => only().tunnels.handleUpgrade(req, socket, head);

  const status = () => {
    if (!routed) return { ...only().status(), logOutput: logOutputStatus(logOutput(), now()) };
    return {
      routing: 'routes',
      startedAt: new Date(startedAt).toISOString(),
      uptimeSeconds: Math.round((now() - startedAt) / 1000),
      routeTable: { version: routes.version, routes: describeRoutes(routes), conflicts: routes.conflicts, problems: routes.problems },
      noRoute,
      services: [...runtimes.values()].map((r) => r.status()),
      // Every service's instances in one list, each naming its service (scripts and the local stack read it).
      instances: [...runtimes.values()].flatMap((r) => r.status().instances.map((i) => ({ service: r.service, ...i }))),
      logOutput: logOutputStatus(logOutput(), now()),
    };
  };
  const server = createPublicServer(options, { logger: logger.child({ component: 'guard' }), metrics }, { request: onRequest, upgrade: onUpgrade });
  const token = options.adminToken || randomBytes(12).toString('base64url');
  const admin = createAdminServer({
    status,
    metrics,
    token,
    dashboardDir: DASHBOARD_DIR,
    logger,
    services: () => [...runtimes.keys()],
    snapshot: (service) => {
      const runtime = runtimes.get(service ?? '') ?? (routed ? [...runtimes.values()][0] : only());
      const snapshot = runtime?.snapshot();
      const none = { now: now(), service: service ?? '', serving: 0, consul: { reachable: serviceList?.reachable() ?? false, since: null, lastError: null, address: options.consul.origin }, instances: [], events: [], series: [] };
      return { ...(snapshot ?? none), services: [...runtimes.keys()], ...(routed ? { conflicts: routes.conflicts } : {}), logOutput: logOutput() };
    },
    setMaintenance: async (id, enable, reason, service) => {
      const candidates = service ? [runtimes.get(service)].filter((r) => r !== undefined) : [...runtimes.values()];
      const owner = candidates.find((r) => r.catalog.instances().some((c) => c.id === id));
      return owner ? owner.setMaintenance(id, enable, reason) : 'unknown-instance';
    },
  });
  const stopBackground = () => {
    serviceList?.stop();
    for (const runtime of runtimes.values()) runtime.stop();
    link.stop();
  };
  // Take clients only once Consul has answered (a few seconds at most): a
  // worker (re)started next to others would otherwise answer 503 for a moment.
  // An unreachable Consul is no reason to wait: the 503 then says so.
  const answered = () => (routed ? serviceList!.reachable() : only().watch.status().everAnswered);
  const unreachable = () => (routed ? false : Boolean(only().watch.status().lastError));
  const firstAnswerBy = now() + FIRST_ANSWER_WAIT_MS;
  while (!answered() && !unreachable() && now() < firstAnswerBy && !deps.stop.aborted) await sleep(20);
  try {
    await listen(server, deps.sockets ? { fd: deps.sockets.public } : { port: options.port, host: options.host }, 'public listener');
    if (isAdmin) await listen(admin, deps.sockets ? { fd: deps.sockets.admin } : { port: options.adminPort, host: options.adminHost }, 'admin listener');
  } catch (error) {
    stopBackground();
    for (const runtime of runtimes.values()) void runtime.close();
    server.close();
    admin.close();
    throw error;
  }
  if (!/^(127\.|::1$|localhost$)/.test(options.adminHost)) logger.warn({ adminHost: options.adminHost }, 'the admin listener (dashboard, status, metrics) is reachable beyond this host, as asked; controls still need the token');
  deps.onReady?.();
  if (!options.adminToken && isAdmin) logger.warn({ token }, 'dashboard control token (generated; set --admin-token to choose one)');
  logger.info({ url: `http://${options.host}:${options.port}/`, dashboard: `http://${options.adminHost}:${options.adminPort}/dashboard/`, admin: `http://${options.adminHost}:${options.adminPort}/_sempre/status`, routing: options.routing, ...(routed ? {} : { service: options.service }), consul: options.consul.origin, strategy: options.strategy }, 'balancer listening');

  if (!deps.stop.aborted) await once(deps.stop, 'abort');

  const inFlight = () => [...runtimes.values()].reduce((n, r) => n + r.proxy.inFlight(), 0);
  const tunnels = () => [...runtimes.values()].reduce((n, r) => n + r.tunnels.open(), 0);
  // stop: SIGTERM. retire: a reload's newer workers serve, on the same sockets,
  // with their own view of Consul and the admin listener; tunnels may go on
  // until --tunnel-drain. orphaned: the main process died (it is being
  // restarted): tunnels close now so it is not held up.
  const mode = deps.stop.reason === 'retire' || deps.stop.reason === 'orphaned' ? deps.stop.reason as string : 'stop';
  logger.info({ mode, inFlight: inFlight(), tunnels: tunnels(), timeoutMs: options.shutdownTimeout, ...(mode === 'retire' ? { tunnelDrainMs: options.tunnelDrain } : {}) }, 'shutting down: no new connections, finishing in-flight requests and open tunnels');
  const stopStartedAt = now();
  if (mode === 'stop') {
    server.close();
    server.closeIdleConnections();
  } else {
    // Newer workers take the new connections on the same socket. Closing the idle keep-alive
    // connections now would race with clients that just sent their next request on one, which a
    // busy event loop has not read yet: a reset (2–23 per reload at 500 GET/s in the lab's
    // balancer-reload drill). Instead each is told `Connection: close` with its next answer; those
    // still open RETIRE_IDLE_GRACE_MS later, rarely used, are closed below. (http.Server#close would
    // close the idle ones at once: net.Server's only stops accepting.)
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => { res.shouldKeepAlive = false; });
    NetServer.prototype.close.call(server);
  }
  let backgroundStopped = false;
  if (mode !== 'stop') {
    admin.close();
    admin.closeIdleConnections();
    stopBackground();
    backgroundStopped = true;
  }
  if (mode === 'orphaned') for (const runtime of runtimes.values()) runtime.tunnels.closeAll('closed-shutdown');
  const deadline = now() + options.shutdownTimeout;
  const tunnelDeadline = mode === 'retire' ? now() + options.tunnelDrain : deadline;
  while ((inFlight() > 0 && now() < deadline) || (tunnels() > 0 && now() < tunnelDeadline)) await sleep(50);
  if (mode !== 'stop') {
    const open = () => new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count ?? 0)));
    while ((await open()) > 0 && now() < stopStartedAt + RETIRE_IDLE_GRACE_MS) await sleep(50);
  }
  if (inFlight() > 0 || tunnels() > 0) logger.warn({ inFlight: inFlight(), tunnels: tunnels() }, 'shutdown timeout: closing remaining requests and tunnels');
  server.closeAllConnections();
  // closeAllConnections() skips upgraded sockets (nodejs/node#53536).
  for (const runtime of runtimes.values()) runtime.tunnels.closeAll('closed-shutdown');
  if (!backgroundStopped) stopBackground();
  await Promise.all([...runtimes.values()].map((r) => r.close()));
  admin.close();
  admin.closeAllConnections();
}
