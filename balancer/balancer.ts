// Wires the balancer together: Consul watch → routing table → picker →
// HTTP path and tunnels, plus passive health, the admin listener, the link
// between workers and graceful shutdown. Each piece lives in its concern's
// folder; this file only connects them.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulClient } from '../shared/consul-client.ts';
import type { Instance } from '../shared/instance.ts';
import type { Logger } from '../shared/logger.ts';
import { maintenanceKey } from '../shared/maintenance-flag.ts';
import { watchCatalog } from './discovery/catalog-watch.ts';
import { watchHealthyInstances } from './discovery/consul-watch.ts';
import { createPublicServer, listen } from './front/public-server.ts';
import type { FailureKind } from './health/failure-kind.ts';
import { InstanceStates } from './health/instance-state.ts';
import { startReadmission } from './health/readmission.ts';
import { startStallDetector } from './health/stall-detector.ts';
import { createAdminServer } from './observe/admin.ts';
import { createAlerter } from './observe/alerts.ts';
import { DashboardModel } from './observe/dashboard-model.ts';
import { createMetrics } from './observe/metrics.ts';
import { balancerStatus, instanceStatus, type InstanceStatus } from './observe/status.ts';
import type { BalancerOptions } from './options.ts';
import { createProxyHandler } from './proxy/http-path.ts';
import { createPicker } from './proxy/picker.ts';
import { ProxyCounters } from './proxy/proxy-counters.ts';
import { createSticky } from './proxy/sticky.ts';
import { createTunnels } from './proxy/tunnels.ts';
import { linkWorker, type Verdict, type WorkerSnapshot } from './worker-link.ts';

export type { InstanceStatus };

export interface BalancerDeps {
  consul: ConsulClient;
  logger: Logger;
  /** Aborted to shut down gracefully. */
  stop: AbortSignal;
  /** This process's worker index with --workers (0 otherwise): worker 0 serves the admin port. */
  worker?: number;
  now?: () => number;
}

/** Built by `npm run build:dashboard` (Vite) from dashboard/. */
const DASHBOARD_DIR = join(import.meta.dirname, '..', 'dashboard', 'dist');

/** How long a starting balancer waits for Consul's first answer before it listens anyway. */
const FIRST_ANSWER_WAIT_MS = 5000;

/** A person reads "refused" more easily than "connect". */
function causeLabel(kind: FailureKind, message: string): string {
  if (kind === 'connect') return /ECONNREFUSED/.test(message) ? 'refused' : 'connect';
  return kind === 'status' ? '5xx' : kind;
}

export async function runBalancer(options: BalancerOptions, deps: BalancerDeps): Promise<void> {
  const { consul, logger } = deps;
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const worker = deps.worker ?? 0;
  const isAdmin = worker === 0;
  const states = new InstanceStates({ ejectAfter: options.ejectAfter, ejectForMs: options.ejectFor, slowStartMs: options.slowStart });
  const picker = createPicker(options.strategy, states, Math.random, options.maxPerInstance);
  const model = new DashboardModel(options.service);
  const counters = new ProxyCounters();
  // Set once the proxy exists; the watch may report a table before that.
  let onRemoved: (id: string) => void = () => undefined;
  let onAdded: (id: string) => void = () => undefined;
  let firstTable = true;

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
  const catalog = watchCatalog({ consul, service: options.service, waitMs: options.consulWait, onChange: (previous, next) => model.catalogChanged(previous, next, now()) });

  const metrics = createMetrics({
    instances: () => {
      const counts: Record<InstanceStatus, number> = { healthy: 0, 'slow-start': 0, ejected: 0, held: 0 };
      const table = watch.table();
      for (const instance of table.instances) counts[instanceStatus(states, table, instance.id, now())] += 1;
      return counts;
    },
    consulReachable: () => watch.status().reachable,
    tableVersion: () => watch.table().version,
    tunnelsByInstance: () => Object.fromEntries(watch.table().instances.map((i) => {
      const elsewhere = link.others().reduce((n, s) => n + (s.instances[i.id]?.tunnels ?? 0), 0);
      return [i.id, tunnels.openOn(i.id) + elsewhere];
    })),
    proxy: () => (link.others().length === 0 ? counters : counters.plus(link.others().map((s) => s.counters))),
  });

  const emptyReason = () => {
    const discovery = watch.status();
    if (!discovery.everAnswered) return `no healthy instance yet: waiting for Consul at ${options.consul.origin} (${discovery.lastError ?? 'first query in progress'})`;
    if (!discovery.reachable) return `no healthy instance: Consul at ${options.consul.origin} is unreachable and listed none before`;
    return `no healthy instance of service "${options.service}" (Consul lists none passing)`;
  };

  // Every worker and every balancer behind one address must share the key, or
  // a client's cookie names no instance on the next one (then it is rebound).
  const stickySecret = options.stickySecret || randomBytes(32).toString('base64url');
  if (!options.stickySecret && options.sticky !== 'off') logger.info('sticky-session key generated for this balancer: a second balancer behind the same address needs a shared --sticky-secret');
  const sticky = createSticky({ sticky: options.sticky, stickyCookie: options.stickyCookie, stickySecret, secure: Boolean(options.tlsCert) });

  // An instance leaves rotation by passive health (a failed attempt or dial,
  // a stall) here or in another worker: stop sending to it, retry what it has
  // not answered elsewhere, close its tunnels so clients reconnect to a live one.
  const outOfRotation = (instance: Instance, cause: string, message: string, from: string) => {
    logger.warn({ instance: instance.id, cause, detail: message, ejectForMs: options.ejectFor, ...(from === 'here' ? {} : { seenBy: from }) }, from === 'here' ? 'instance ejected by passive health check' : 'instance ejected: another worker saw it fail');
    model.ejected(instance, cause, message, now());
    proxy.abandon(instance.id, `ejected (${cause})`);
    tunnels.closeInstance(instance.id, 'closed-ejected');
  };
  const ejectedHere = (instance: Instance, kind: FailureKind, message: string, cause = causeLabel(kind, message)) => {
    metrics.ejections.inc({ instance: instance.id, cause });
    outOfRotation(instance, cause, message, 'here');
    link.share({ kind: 'eject', instance: instance.id, failure: kind, cause, message });
  };

  const proxy = createProxyHandler({
    settings: options,
    logger: logger.child({ component: 'proxy' }),
    table: () => watch.table(),
    states,
    picker,
    sticky,
    counters,
    emptyReason,
    now,
    onEjected: (instance, kind, message) => ejectedHere(instance, kind, message),
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
    onEjected: (instance, kind, message) => ejectedHere(instance, kind, message),
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

  const readmission = startReadmission({
    states, table: () => watch.table(), logger, probeTimeoutMs: Math.max(options.connectTimeout, 500), now,
    onReadmitted: (id) => {
      model.readmitted(id, now());
      link.share({ kind: 'readmit', instance: id });
    },
  });
  const stallDetector = options.stallAfter === 0 ? { stop: () => undefined } : startStallDetector({
    stallAfterMs: options.stallAfter,
    probeTimeoutMs: options.stallProbeTimeout,
    states,
    table: () => watch.table(),
    oldestUnanswered: (id) => proxy.oldestUnanswered(id),
    logger,
    now,
    onStalled: (instance, message) => {
      if (states.eject(instance.id, 'timeout', message, now())) ejectedHere(instance, 'timeout', message, 'stall');
    },
  });

  // With --workers: verdicts from the other workers, and this one's report.
  let reportedUpTo = 0;
  const report = (): WorkerSnapshot => {
    const seconds = model.traffic.closedAfter(reportedUpTo);
    if (seconds.length > 0) reportedUpTo = seconds.at(-1)!.t;
    const instances: WorkerSnapshot['instances'] = {};
    for (const state of states.all()) instances[state.id] = { requests: state.requests, failures: state.failures, outstanding: state.outstanding, tunnels: tunnels.openOn(state.id) };
    return { worker, at: now(), inFlight: proxy.inFlight(), tunnels: tunnels.open(), counters: counters.snapshot(), instances, seconds };
  };
  const applyVerdict = (verdict: Verdict, from: number) => {
    const instance = watch.table().byId.get(verdict.instance);
    if (!instance) return;
    if (verdict.kind === 'readmit') {
      if (!states.isEjected(instance.id)) return;
      states.readmit(instance.id, now());
      model.readmitted(instance.id, now());
      logger.info({ instance: instance.id, seenBy: `worker ${from}` }, 'instance readmitted: another worker saw it answer again');
      return;
    }
    const message = verdict.message ?? 'failed';
    if (states.eject(instance.id, verdict.failure ?? 'connect', message, now())) outOfRotation(instance, verdict.cause ?? 'connect', message, `worker ${from}`);
  };
  const link = linkWorker({ index: worker, onVerdict: applyVerdict, report });
  if (isAdmin) {
    // Other workers' closed seconds join this one's traffic series.
    const absorbed = new Set<number>();
    setInterval(() => {
      for (const other of link.others()) {
        if (absorbed.has(other.at)) continue;
        absorbed.add(other.at);
        model.traffic.absorb(other.seconds);
      }
      if (absorbed.size > 1000) absorbed.clear();
    }, 250).unref();
  }

  // Alerts come from worker 0 only, like the dashboard: one alert per incident.
  if (options.alertWebhook && isAdmin) {
    const alerter = createAlerter({
      url: options.alertWebhook, format: options.alertFormat, timeoutMs: options.alertTimeout, service: options.service, logger: logger.child({ component: 'alerts' }),
      lookup: (id) => {
        const known = catalog.instances().find((c) => c.id === id) ?? watch.table().byId.get(id);
        return known && { address: known.address, port: known.port, node: known.node, version: known.meta.version ?? null };
      },
    });
    model.incidents.onTransition((transition) => alerter.send(transition));
  }

  const server = createPublicServer(options, { logger: logger.child({ component: 'guard' }), metrics }, { request: proxy.handle, upgrade: tunnels.handleUpgrade });
  const token = options.adminToken || randomBytes(12).toString('base64url');
  const admin = createAdminServer({
    status: () => balancerStatus({
      service: options.service, startedAt, now: now(), strategy: options.strategy, consulAddress: options.consul.origin, discovery: watch.status(),
      table: watch.table(), states, sticky: sticky.enabled(watch.table()),
      own: { inFlight: proxy.inFlight(), tunnels: tunnels.open(), tunnelsOn: (id) => tunnels.openOn(id) }, others: link.others(),
    }),
    metrics,
    token,
    dashboardDir: DASHBOARD_DIR,
    logger,
    snapshot: () => {
      const discovery = watch.status();
      const others = link.others();
      return model.snapshot({
        now: now(), table: watch.table(), states, seriesSeconds: 300,
        tunnels: (id) => tunnels.openOn(id) + others.reduce((n, s) => n + (s.instances[id]?.tunnels ?? 0), 0),
        consul: { reachable: discovery.reachable, unreachableSince: discovery.unreachableSince, lastError: discovery.lastError, address: options.consul.origin },
      });
    },
    setMaintenance: async (id, enable, reason) => {
      if (!catalog.instances().some((c) => c.id === id)) return 'unknown-instance';
      const key = maintenanceKey(options.service, id);
      if (enable) await consul.kv.set({ key, value: reason, timeout: 2000 } as never);
      else await consul.kv.del({ key, timeout: 2000 } as never);
      return 'ok';
    },
  });
  const stopBackground = () => {
    watch.stop();
    catalog.stop();
    readmission.stop();
    stallDetector.stop();
    link.stop();
  };
  // Take clients only once Consul has answered (a few seconds at most): a
  // worker (re)started next to others would otherwise answer 503 for a moment.
  const firstAnswerBy = now() + FIRST_ANSWER_WAIT_MS;
  // An unreachable Consul is no reason to wait: the 503 then says so.
  while (!watch.status().everAnswered && !watch.status().lastError && now() < firstAnswerBy && !deps.stop.aborted) await sleep(20);
  try {
    await listen(server, options.port, options.host, 'public listener');
    if (isAdmin) await listen(admin, options.adminPort, options.adminHost, 'admin listener');
  } catch (error) {
    stopBackground();
    void proxy.close();
    server.close();
    admin.close();
    throw error;
  }
  if (!/^(127\.|::1$|localhost$)/.test(options.adminHost)) logger.warn({ adminHost: options.adminHost }, 'the admin listener (dashboard, status, metrics) is reachable beyond this host, as asked; controls still need the token');
  if (!options.adminToken && isAdmin) logger.warn({ token }, 'dashboard control token (generated; set --admin-token to choose one)');
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
  stopBackground();
  await proxy.close();
  admin.close();
  admin.closeAllConnections();
}
