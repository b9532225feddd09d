// Wires the balancer together: Consul watch → routing table → picker →
// proxy, plus passive health, the admin listener and graceful shutdown.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerOptions } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createSecureServer as createHttp2Server } from 'node:http2';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulClient } from '../shared/consul-client.ts';
import type { Logger } from '../shared/logger.ts';
import { createAdminServer } from './observe/admin.ts';
import { createAlerter } from './observe/alerts.ts';
import { guardServer } from './front/client-guard.ts';
import { watchCatalog } from './discovery/catalog-watch.ts';
import { DashboardModel } from './observe/dashboard-model.ts';
import { maintenanceKey } from '../shared/maintenance-flag.ts';
import type { FailureKind } from './proxy/retry-policy.ts';
import type { Instance } from '../shared/instance.ts';
import { watchHealthyInstances } from './discovery/consul-watch.ts';
import { InstanceStates } from './health/instance-state.ts';
import { createMetrics } from './observe/metrics.ts';
import type { BalancerOptions } from './options.ts';
import { createPicker } from './proxy/picker.ts';
import { createProxyHandler } from './proxy/http-path.ts';
import { ProxyCounters } from './proxy/proxy-counters.ts';
import { createSticky } from './proxy/sticky.ts';
import { createTunnels } from './proxy/tunnels.ts';
import { startReadmission } from './health/readmission.ts';
import { startStallDetector } from './health/stall-detector.ts';

export interface BalancerDeps {
  consul: ConsulClient;
  logger: Logger;
  /** Aborted to shut down gracefully. */
  stop: AbortSignal;
  /** False in cluster workers other than worker 0: only one process serves the admin port. */
  admin?: boolean;
  now?: () => number;
}

export type InstanceStatus = 'healthy' | 'slow-start' | 'ejected' | 'held';

/** Built by `npm run build:dashboard` (Vite) from dashboard/. */
const DASHBOARD_DIR = join(import.meta.dirname, '..', 'dashboard', 'dist');

/** A person reads "refused" more easily than "connect". */
function causeLabel(kind: FailureKind, message: string): string {
  if (kind === 'connect') return /ECONNREFUSED/.test(message) ? 'refused' : 'connect';
  return kind === 'status' ? '5xx' : kind;
}

async function listen(server: Server, port: number, host: string, what: string): Promise<void> {
  server.listen(port, host);
  const [error] = await Promise.race([once(server, 'listening').then(() => [undefined]), once(server, 'error')]);
  if (error) throw new Error(`cannot listen on ${host}:${port} for the ${what}: ${(error as Error).message}`);
}

export async function runBalancer(options: BalancerOptions, deps: BalancerDeps): Promise<void> {
  const { consul, logger } = deps;
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const states = new InstanceStates({ ejectAfter: options.ejectAfter, ejectForMs: options.ejectFor, slowStartMs: options.slowStart });
  const picker = createPicker(options.strategy, states, Math.random, options.maxPerInstance);
  let firstTable = true;
  const model = new DashboardModel(options.service);
  // Set once the proxy exists; the watch may report a table before that.
  let onRemoved: (id: string) => void = () => undefined;
  let onAdded: (id: string) => void = () => undefined;

  const watch = watchHealthyInstances({
    consul,
    service: options.service,
    logger,
    onReachability: (reachable, detail) => model.consulReachability(reachable, detail, now()),
    graceMs: options.consulGrace,
    waitMs: options.consulWait,
    now,
    onTable: (table, diff) => {
      states.applyDiff(diff, now(), firstTable);
      if (table.instances.length > 0) firstTable = false;
      model.tableChanged(diff, now(), (id) => !states.isEjected(id));
      for (const instance of diff.removed) onRemoved(instance.id);
      for (const instance of diff.added) onAdded(instance.id);
    },
  });

  const instanceState = (id: string): InstanceStatus => {
    // Ejection first: it is what decides routing, held or not.
    const state = states.get(id);
    if (state?.ejected) return 'ejected';
    if (watch.table().held.has(id)) return 'held';
    return states.weight(id, now()) < 1 ? 'slow-start' : 'healthy';
  };

  const metrics = createMetrics({
    instances: () => {
      const counts: Record<string, number> = { healthy: 0, 'slow-start': 0, ejected: 0, held: 0 };
      for (const instance of watch.table().instances) counts[instanceState(instance.id)]! += 1;
      return counts;
    },
    consulReachable: () => watch.status().reachable,
    tableVersion: () => watch.table().version,
    tunnelsByInstance: () => Object.fromEntries(watch.table().instances.map((i) => [i.id, tunnels.openOn(i.id)])),
    proxy: () => counters,
  });
  const counters = new ProxyCounters();

  const emptyReason = () => {
    const discovery = watch.status();
    if (!discovery.everAnswered) return `no healthy instance yet: waiting for Consul at ${options.consul.origin} (${discovery.lastError ?? 'first query in progress'})`;
    if (!discovery.reachable) return `no healthy instance: Consul at ${options.consul.origin} is unreachable and listed none before`;
    return `no healthy instance of service "${options.service}" (Consul lists none passing)`;
  };

  const tls = options.tlsCert ? { cert: readFileSync(options.tlsCert), key: readFileSync(options.tlsKey), minVersion: 'TLSv1.2' as const } : undefined;
  // Every worker and every balancer behind one address must share the key, or
  // a client's cookie names no instance on the next one (then it is rebound).
  const stickySecret = options.stickySecret || randomBytes(32).toString('base64url');
  if (!options.stickySecret && options.sticky !== 'off') logger.info('sticky-session key generated for this balancer: a second balancer behind the same address needs a shared --sticky-secret');
  const sticky = createSticky({ sticky: options.sticky, stickyCookie: options.stickyCookie, stickySecret, secure: Boolean(tls) });
  const passiveEjection = (instance: Instance, kind: FailureKind, message: string) => {
    const cause = causeLabel(kind, message);
    logger.warn({ instance: instance.id, cause, detail: message, ejectForMs: options.ejectFor }, 'instance ejected by passive health check');
    model.ejected(instance, cause, message, now());
    tunnels.closeInstance(instance.id, 'closed-ejected');
  };
  const proxy = createProxyHandler({
    settings: options,
    logger: logger.child({ component: 'proxy' }),
    table: () => watch.table(),
    states,
    picker,
    sticky,
    counters,
    ejections: metrics.ejections,
    emptyReason,
    now,
    onEjected: passiveEjection,
    onRequest: (status, durationMs, servedBy) => model.traffic.record(status, durationMs, servedBy, now()),
  });
  const tunnels = createTunnels({
    settings: options,
    logger: logger.child({ component: 'tunnels' }),
    table: () => watch.table(),
    states,
    picker,
    sticky,
    metrics,
    emptyReason,
    now,
    onEjected: (instance, kind, message) => {
      metrics.ejections.inc({ instance: instance.id, cause: kind });
      passiveEjection(instance, kind, message);
      proxy.abandon(instance.id, `ejected after ${kind}`);
    },
  });
  // Consul stopped listing an instance. In maintenance (a deploy, the agent
  // draining on SIGTERM) its tunnels may finish until the drain deadline;
  // otherwise it failed and they are closed now so clients reconnect to a
  // live one. The catalog watch may hear of the maintenance a moment after
  // the health watch dropped the instance, hence the short second look.
  const inMaintenance = (id: string) => catalog.instances().some((c) => c.id === id && c.health === 'maintenance');
  onRemoved = (id) => {
    proxy.abandon(id, 'Consul no longer lists it as passing');
    proxy.forget(id);
    if (tunnels.openOn(id) === 0) return;
    if (inMaintenance(id)) {
      tunnels.drainInstance(id);
      return;
    }
    setTimeout(() => {
      if (watch.table().byId.has(id)) return; // back already
      if (inMaintenance(id)) tunnels.drainInstance(id);
      else tunnels.closeInstance(id, 'closed-removed');
    }, 300).unref();
  };
  onAdded = (id) => tunnels.cancelDrain(id);
  const readmission = startReadmission({ states, table: () => watch.table(), logger, probeTimeoutMs: Math.max(options.connectTimeout, 500), now, onReadmitted: (id) => model.readmitted(id, now()) });
  // Alerts come from worker 0 only, like the dashboard: one alert per incident.
  if (options.alertWebhook && deps.admin !== false) {
    const alerter = createAlerter({
      url: options.alertWebhook, format: options.alertFormat, timeoutMs: options.alertTimeout, service: options.service, logger: logger.child({ component: 'alerts' }),
      lookup: (id) => {
        const known = catalog.instances().find((c) => c.id === id) ?? watch.table().byId.get(id);
        return known && { address: known.address, port: known.port, node: known.node, version: known.meta.version ?? null };
      },
    });
    model.incidents.onTransition((transition) => alerter.send(transition));
  }
  const catalog = watchCatalog({ consul, service: options.service, waitMs: options.consulWait, onChange: (previous, next) => model.catalogChanged(previous, next, now()) });
  const stallDetector = options.stallAfter === 0 ? { stop: () => undefined } : startStallDetector({
    stallAfterMs: options.stallAfter,
    probeTimeoutMs: options.stallProbeTimeout,
    states,
    table: () => watch.table(),
    oldestUnanswered: (id) => proxy.oldestUnanswered(id),
    logger,
    now,
    onStalled: (instance, message) => {
      if (!states.eject(instance.id, 'timeout', message, now())) return;
      metrics.ejections.inc({ instance: instance.id, cause: 'stall' });
      logger.warn({ instance: instance.id, cause: 'stall', detail: message, ejectForMs: options.ejectFor }, 'instance ejected: stalled');
      model.ejected(instance, 'stall', message, now());
      proxy.abandon(instance.id, 'stalled');
      tunnels.closeInstance(instance.id, 'closed-ejected');
    },
  });

  const status = () => {
    const table = watch.table();
    const discovery = watch.status();
    return {
      service: options.service,
      startedAt: new Date(startedAt).toISOString(),
      uptimeSeconds: Math.round((now() - startedAt) / 1000),
      strategy: options.strategy,
      consul: {
        address: options.consul.origin,
        reachable: discovery.reachable,
        everAnswered: discovery.everAnswered,
        lastContactAt: discovery.lastContactAt ? new Date(discovery.lastContactAt).toISOString() : null,
        unreachableSince: discovery.unreachableSince ? new Date(discovery.unreachableSince).toISOString() : null,
        lastError: discovery.lastError ?? null,
      },
      table: { version: table.version, size: table.instances.length },
      inFlight: proxy.inFlight(),
      tunnels: tunnels.open(),
      sticky: sticky.enabled(table),
      instances: table.instances.map((instance) => {
        const state = states.get(instance.id);
        return {
          id: instance.id,
          node: instance.node,
          address: instance.address,
          port: instance.port,
          state: instanceState(instance.id),
          weight: Math.round(states.weight(instance.id, now()) * 100) / 100,
          outstanding: state?.outstanding ?? 0,
          tunnels: tunnels.openOn(instance.id),
          requests: state?.requests ?? 0,
          failures: state?.failures ?? 0,
          ejections: state?.ejections ?? 0,
          since: state ? new Date(state.since).toISOString() : null,
          lastFailure: state?.lastFailure ? { ...state.lastFailure, at: new Date(state.lastFailure.at).toISOString() } : null,
          tags: instance.tags,
          meta: instance.meta,
        };
      }),
    };
  };

  const serverOptions: ServerOptions = {
    keepAliveTimeout: options.clientIdleTimeout,
    headersTimeout: options.headersTimeout,
    requestTimeout: options.requestTimeout,
    maxHeaderSize: options.maxHeaderSize,
    // Node checks the two timeouts above every 30 s by default: a slowloris would get that long.
    connectionsCheckingInterval: 1000,
  };
  // HTTP/2 (with HTTP/1.1 on the same port): Node's compatibility API gives
  // the handler request and response objects shaped like HTTP/1's, and
  // http-proxy-3 accepts them (it forwards in HTTP/1.1). The cast is that seam.
  const server: Server = tls && options.http2
    ? createHttp2Server({ ...tls, allowHTTP1: true, settings: { maxHeaderListSize: options.maxHeaderSize } }) as unknown as Server
    : tls ? createTlsServer({ ...serverOptions, ...tls }) : createServer(serverOptions);
  if (tls && options.http2) {
    // Idle connections (HTTP/2 sessions and HTTP/1.1 alike) close after this;
    // the HTTP/1.1 head timeout is the guard's (see client-guard.ts).
    server.setTimeout(options.clientIdleTimeout);
  }
  const limits = { ...options, ...(tls && options.http2 ? { http1HeadersTimeoutMs: options.headersTimeout } : {}) };
  server.on('request', guardServer(server, limits, { logger: logger.child({ component: 'guard' }), metrics }, proxy.handle, tunnels.handleUpgrade));
  const token = options.adminToken || randomBytes(12).toString('base64url');
  const admin = createAdminServer({
    status,
    metrics,
    token,
    dashboardDir: DASHBOARD_DIR,
    logger,
    snapshot: () => {
      const discovery = watch.status();
      return model.snapshot({ now: now(), table: watch.table(), states, tunnels: (id) => tunnels.openOn(id), seriesSeconds: 300, consul: { reachable: discovery.reachable, unreachableSince: discovery.unreachableSince, lastError: discovery.lastError, address: options.consul.origin } });
    },
    setMaintenance: async (id, enable, reason) => {
      if (!catalog.instances().some((c) => c.id === id)) return 'unknown-instance';
      const key = maintenanceKey(options.service, id);
      if (enable) await consul.kv.set({ key, value: reason, timeout: 2000 } as never);
      else await consul.kv.del({ key, timeout: 2000 } as never);
      return 'ok';
    },
  });
  try {
    await listen(server, options.port, options.host, 'public listener');
    if (deps.admin !== false) await listen(admin, options.adminPort, options.adminHost, 'admin listener');
  } catch (error) {
    watch.stop();
    catalog.stop();
    readmission.stop();
    stallDetector.stop();
    void proxy.close();
    server.close();
    admin.close();
    throw error;
  }
  if (!/^(127\.|::1$|localhost$)/.test(options.adminHost)) logger.warn({ adminHost: options.adminHost }, 'the admin listener (dashboard, status, metrics) is reachable beyond this host, as asked; controls still need the token');
  if (!options.adminToken && deps.admin !== false) logger.warn({ token }, 'dashboard control token (generated; set --admin-token to choose one)');
  logger.info({ url: `http://${options.host}:${options.port}/`, dashboard: `http://${options.adminHost}:${options.adminPort}/dashboard/`, admin: `http://${options.adminHost}:${options.adminPort}/_sempre/status`, service: options.service, consul: options.consul.origin, strategy: options.strategy }, 'balancer listening');

  if (!deps.stop.aborted) await once(deps.stop, 'abort');

  logger.info({ inFlight: proxy.inFlight(), tunnels: tunnels.open(), timeoutMs: options.shutdownTimeout }, 'shutting down: no new connections, finishing in-flight requests and open tunnels');
  server.close();
  server.closeIdleConnections();
  const deadline = now() + options.shutdownTimeout;
  while ((proxy.inFlight() > 0 || tunnels.open() > 0) && now() < deadline) await sleep(50);
  if (proxy.inFlight() > 0 || tunnels.open() > 0) logger.warn({ inFlight: proxy.inFlight(), tunnels: tunnels.open() }, 'shutdown timeout: closing remaining requests and tunnels');
  server.closeAllConnections();
  // closeAllConnections() skips upgraded sockets (nodejs/node#53536).
  tunnels.closeAll('closed-shutdown');
  watch.stop();
  catalog.stop();
  readmission.stop();
  stallDetector.stop();
  await proxy.close();
  admin.close();
  admin.closeAllConnections();
}
