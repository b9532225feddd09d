// Wires the balancer together. With --routing service (the default) one
// service gets every request; with --routing routes every service whose
// agents declare routes is followed, and each request goes to the service
// whose route matches its host and path. Per service: a runtime (Consul
// watch, passive health, HTTP path, tunnels: service-runtime.ts). Around
// them: the public listener, the admin listener, the link between workers
// and graceful shutdown. This file only connects them.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulClient } from '../shared/consul-client.ts';
import { combineLogOutput, type LogOutputStats } from '../shared/log-output.ts';
import type { Logger } from '../shared/logger.ts';
import { buildRouteTable, describeRoutes, EMPTY_ROUTES, type RouteTable } from './discovery/route-table.ts';
import type { RoutingTable } from './discovery/routing-table.ts';
import { watchRoutedServices } from './discovery/service-list.ts';
import { createPublicServer, listen } from './front/public-server.ts';
import { routedHandlers, singleServiceHandlers, type RequestHandlers } from './front/request-router.ts';
import { shutDownGracefully } from './lifecycle/graceful-shutdown.ts';
import { createAdminServer } from './observe/admin.ts';
import { createMetrics, type BalancerMetrics } from './observe/metrics.ts';
import type { InstanceStatus } from './observe/status.ts';
import { balancerStatusView, dashboardSnapshot, type BalancerView } from './observe/status-view.ts';
import type { BalancerOptions } from './options.ts';
import { startServiceRuntime, type ServiceRuntime } from './service-runtime.ts';
import { linkWorker, type WorkerLink, type WorkerSnapshot } from './worker-link.ts';

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

/** What the pieces of one balancer process share. */
interface Balancer {
  readonly options: BalancerOptions;
  readonly deps: BalancerDeps;
  readonly logger: Logger;
  readonly now: () => number;
  readonly startedAt: number;
  readonly worker: number;
  /** Worker 0 (or the only process) serves the admin port. */
  readonly isAdmin: boolean;
  /** --routing routes: every service whose agents declare routes is followed. */
  readonly routed: boolean;
  readonly stickySecret: string;
  /** One runtime per followed service. */
  readonly runtimes: Map<string, ServiceRuntime>;
  /** Rebuilt whenever a routed service's instances change. */
  routes: RouteTable;
  /** The route conflicts last warned about (each new set is warned about once). */
  lastConflicts: string;
  /** Requests that no route matched. */
  noRoute: number;
  /** With routes: the watch of which services declare them. */
  serviceList: { reachable(): boolean; stop(): void } | undefined;
  readonly link: WorkerLink;
}

export async function runBalancer(options: BalancerOptions, deps: BalancerDeps): Promise<void> {
  const balancer = createBalancer(options, deps);
  const { logger } = balancer;
  const metrics = balancerMetrics(balancer);
  if (balancer.routed) followRoutedServices(balancer, metrics);
  else addService(balancer, metrics, options.service);

  const server = createPublicServer(options, { logger: logger.child({ component: 'guard' }), metrics }, requestHandlers(balancer));
  const token = options.adminToken || randomBytes(12).toString('base64url');
  const admin = createAdminListener(balancer, metrics, token);
  await untilConsulAnswers(balancer);
  try {
    await listenPublicAndAdmin(server, admin, options, balancer.isAdmin, deps.sockets);
  } catch (error) {
    stopBackground(balancer);
    for (const runtime of balancer.runtimes.values()) void runtime.close();
    server.close();
    admin.close();
    throw error;
  }
  deps.onReady?.();
  logListening(balancer, token);

  if (!deps.stop.aborted) await once(deps.stop, 'abort');

  await shutDownGracefully({ reason: deps.stop.reason, server, admin, runtimes: balancer.runtimes, stopBackground: () => stopBackground(balancer), logger, now: balancer.now, timeoutMs: options.shutdownTimeout, tunnelDrainMs: options.tunnelDrain });
}

function createBalancer(options: BalancerOptions, deps: BalancerDeps): Balancer {
  const now = deps.now ?? Date.now;
  const worker = deps.worker ?? 0;
  const balancer: Balancer = {
    options, deps, logger: deps.logger, now, startedAt: now(), worker, isAdmin: worker === 0, routed: options.routing === 'routes',
    stickySecret: stickySecretFor(options, deps.logger),
    runtimes: new Map(), routes: EMPTY_ROUTES, lastConflicts: '', noRoute: 0, serviceList: undefined,
    link: linkWorker({
      index: worker,
      onVerdict: (verdict, from) => balancer.runtimes.get(verdict.service)?.applyVerdict(verdict, from),
      report: (): WorkerSnapshot => ({ worker, services: Object.fromEntries([...balancer.runtimes].map(([service, runtime]) => [service, runtime.report()])), logOutput: deps.logOutput?.() }),
    }),
  };
  return balancer;
}

// Every worker and every balancer behind one address must share the key, or
// a client's cookie names no instance on the next one (then it is rebound).
function stickySecretFor(options: BalancerOptions, logger: Logger): string {
  if (!options.stickySecret && options.sticky !== 'off') logger.info('sticky-session key generated for this balancer: a second balancer behind the same address needs a shared --sticky-secret');
  return options.stickySecret || randomBytes(32).toString('base64url');
}

/** The runtime of --service (without routes there is only that one). */
function only(balancer: Balancer): ServiceRuntime {
  return balancer.runtimes.get(balancer.options.service)!;
}

/** Every worker's log output together (each writes its own lines). */
function allLogOutput(balancer: Balancer): LogOutputStats {
  return combineLogOutput([balancer.deps.logOutput?.(), ...balancer.link.others().map((w) => w.logOutput)]);
}

/** The other workers' latest reports for one service. */
function othersFor(balancer: Balancer, service: string) {
  return balancer.link.others().flatMap((w) => (w.services[service] ? [w.services[service]] : []));
}

function balancerMetrics(balancer: Balancer): BalancerMetrics {
  const { runtimes } = balancer;
  return createMetrics({
    consulReachable: () => [...runtimes.values()].some((r) => r.watch.status().reachable) || (balancer.routed && balancer.serviceList?.reachable() === true),
    services: () => [...runtimes.values()].map((runtime) => ({
      service: runtime.service,
      instances: () => runtime.instanceCounts(),
      tableVersion: () => runtime.watch.table().version,
      failOpen: () => (runtime.failOpen.state().active && runtime.failOpen.state().served.length > 0 ? 1 : 0),
      tunnelsByInstance: () => Object.fromEntries(runtime.watch.table().instances.map((i) => [i.id, runtime.tunnels.openOn(i.id) + othersFor(balancer, runtime.service).reduce((n, s) => n + (s.instances[i.id]?.tunnels ?? 0), 0)])),
      proxy: () => {
        const others = othersFor(balancer, runtime.service);
        return others.length === 0 ? runtime.counters : runtime.counters.plus(others.map((s) => s.counters));
      },
    })),
    noRoute: () => balancer.noRoute,
    routeConflicts: () => balancer.routes.conflicts.length,
    logLinesDropped: () => allLogOutput(balancer).droppedLines,
  });
}

// The route table is rebuilt whenever a routed service's instances change.
function rebuildRoutes(balancer: Balancer): void {
  const { runtimes, logger } = balancer;
  const tables = new Map<string, RoutingTable>([...runtimes].map(([service, runtime]) => [service, runtime.watch.table()]));
  const notPassing = new Map([...runtimes].map(([service, runtime]) => [service, runtime.catalog.instances().filter((c) => c.health !== 'passing')]));
  const routes = buildRouteTable(balancer.routes, tables, notPassing);
  balancer.routes = routes;
  const conflicts = JSON.stringify(routes.conflicts);
  if (conflicts !== balancer.lastConflicts && routes.conflicts.length > 0) logger.warn({ conflicts: routes.conflicts }, 'two services declare the same route: the first by name serves it');
  balancer.lastConflicts = conflicts;
  for (const problem of routes.problems) logger.warn({ problem }, 'an instance declares a route that does not parse: ignored');
  logger.info({ version: routes.version, routes: describeRoutes(routes).map((r) => `${r.route} → ${r.service} (${r.instances.length})`) }, 'route table updated');
}

function addService(balancer: Balancer, metrics: BalancerMetrics, service: string): void {
  const { runtimes, options, routed } = balancer;
  if (runtimes.has(service)) return;
  runtimes.set(service, startServiceRuntime(service, options, {
    consul: balancer.deps.consul, logger: balancer.logger, now: balancer.now, startedAt: balancer.startedAt, isAdmin: balancer.isAdmin, stickySecret: balancer.stickySecret,
    // Services behind one host share the browser's cookie jar: one cookie each.
    stickyCookie: routed ? `${options.stickyCookie}_${service.replace(/[^A-Za-z0-9_-]/g, '_')}` : options.stickyCookie,
    metrics,
    share: (verdict) => balancer.link.share(verdict),
    others: () => othersFor(balancer, service),
    workers: balancer.deps.workers ?? 1,
    ...(routed ? { onTable: () => rebuildRoutes(balancer) } : {}),
  }));
}

function removeService(balancer: Balancer, service: string): void {
  const runtime = balancer.runtimes.get(service);
  if (!runtime) return;
  balancer.runtimes.delete(service);
  runtime.stop();
  rebuildRoutes(balancer);
  // Requests already on their way finish; the pools close after them.
  setTimeout(() => void runtime.close(), balancer.options.shutdownTimeout).unref();
  balancer.logger.info({ service }, 'service no longer declares routes: not followed any more');
}

/** With --routing routes: follow every service that declares routes, as Consul's list of them changes. */
function followRoutedServices(balancer: Balancer, metrics: BalancerMetrics): void {
  const { logger } = balancer;
  let listReachable = false;
  const watch = watchRoutedServices({
    consul: balancer.deps.consul,
    waitMs: balancer.options.consulWait,
    onFailure: (message) => {
      listReachable = false;
      logger.warn({ err: message }, 'cannot read the service list from Consul; keeping the services already followed');
    },
    onChange: (services) => {
      listReachable = true;
      for (const service of services) addService(balancer, metrics, service);
      // A service that disappears from the list keeps serving what it had until
      // its own watch drops its instances; then it is let go.
      for (const service of [...balancer.runtimes.keys()]) if (!services.includes(service)) removeService(balancer, service);
      logger.info({ services }, 'routed services');
    },
  });
  balancer.serviceList = { reachable: () => listReachable, stop: () => watch.stop() };
}

function requestHandlers(balancer: Balancer): RequestHandlers {
  if (!balancer.routed) return singleServiceHandlers(only(balancer));
  return routedHandlers({
    routes: () => balancer.routes,
    runtime: (service) => balancer.runtimes.get(service),
    countNoRoute: () => {
      balancer.noRoute += 1;
    },
  });
}

function createAdminListener(balancer: Balancer, metrics: BalancerMetrics, token: string): Server {
  const { runtimes, options } = balancer;
  const view: BalancerView = {
    routed: balancer.routed, service: options.service, consulAddress: options.consul.origin, startedAt: balancer.startedAt, now: balancer.now, runtimes,
    routes: () => balancer.routes,
    noRoute: () => balancer.noRoute,
    logOutput: () => allLogOutput(balancer),
    serviceListReachable: () => balancer.serviceList?.reachable() ?? false,
  };
  return createAdminServer({
    status: () => balancerStatusView(view),
    metrics,
    token,
    dashboardDir: DASHBOARD_DIR,
    logger: balancer.logger,
    services: () => [...runtimes.keys()],
    snapshot: (service) => dashboardSnapshot(view, service),
    setMaintenance: async (id, enable, reason, service) => {
      const candidates = service ? [runtimes.get(service)].filter((r) => r !== undefined) : [...runtimes.values()];
      const owner = candidates.find((r) => r.catalog.instances().some((c) => c.id === id));
      return owner ? owner.setMaintenance(id, enable, reason) : 'unknown-instance';
    },
  });
}

// Take clients only once Consul has answered (a few seconds at most): a
// worker (re)started next to others would otherwise answer 503 for a moment.
// An unreachable Consul is no reason to wait: the 503 then says so.
async function untilConsulAnswers(balancer: Balancer): Promise<void> {
  const { routed, now } = balancer;
  const answered = () => (routed ? balancer.serviceList!.reachable() : only(balancer).watch.status().everAnswered);
  const unreachable = () => (routed ? false : Boolean(only(balancer).watch.status().lastError));
  const firstAnswerBy = now() + FIRST_ANSWER_WAIT_MS;
  while (!answered() && !unreachable() && now() < firstAnswerBy && !balancer.deps.stop.aborted) await sleep(20);
}

/** The public listener, then (worker 0 or the only process) the admin listener: on the sockets inherited from the main process, else on --host/--port. */
async function listenPublicAndAdmin(server: Server, admin: Server, options: BalancerOptions, isAdmin: boolean, sockets: BalancerDeps['sockets']): Promise<void> {
  await listen(server, sockets ? { fd: sockets.public } : { port: options.port, host: options.host }, 'public listener');
  if (isAdmin) await listen(admin, sockets ? { fd: sockets.admin } : { port: options.adminPort, host: options.adminHost }, 'admin listener');
}

function logListening(balancer: Balancer, token: string): void {
  const { options, logger, routed } = balancer;
  if (!/^(127\.|::1$|localhost$)/.test(options.adminHost)) logger.warn({ adminHost: options.adminHost }, 'the admin listener (dashboard, status, metrics) is reachable beyond this host, as asked; controls still need the token');
  if (!options.adminToken && balancer.isAdmin) logger.warn({ token }, 'dashboard control token (generated; set --admin-token to choose one)');
  logger.info({ url: `http://${options.host}:${options.port}/`, dashboard: `http://${options.adminHost}:${options.adminPort}/dashboard/`, admin: `http://${options.adminHost}:${options.adminPort}/_sempre/status`, routing: options.routing, ...(routed ? {} : { service: options.service }), consul: options.consul.origin, strategy: options.strategy }, 'balancer listening');
}

/** The watches, timers and the link between workers. */
function stopBackground(balancer: Balancer): void {
  balancer.serviceList?.stop();
  for (const runtime of balancer.runtimes.values()) runtime.stop();
  balancer.link.stop();
}
