// Everything the balancer keeps for one Consul service: the watch of its
// healthy instances (and of its whole catalog entry, for people), passive
// health, the HTTP path and tunnels with their own pools, picker, retries,
// slow start and stickiness, and its dashboard model. With --routing routes
// there is one per routed service; otherwise one for --service.
import type { ConsulClient } from '../shared/consul-client.ts';
import type { Instance } from '../shared/instance.ts';
import type { Logger } from '../shared/logger.ts';
import { maintenanceKey } from '../shared/maintenance-flag.ts';
import type { HealReport } from '../shared/heal-report.ts';
import { watchCatalog, type CatalogWatch } from './discovery/catalog-watch.ts';
import { watchHealthyInstances, type HealthWatch } from './discovery/consul-watch.ts';
import { createFailOpen, describeFailOpen, type FailOpen } from './discovery/fail-open.ts';
import type { RoutingTable } from './discovery/routing-table.ts';
import type { FailureKind } from './health/failure-kind.ts';
import { InstanceStates } from './health/instance-state.ts';
import { answersHealthy, startReadmission } from './health/readmission.ts';
import { startStallDetector } from './health/stall-detector.ts';
import { createAlerter } from './observe/alerts.ts';
import { watchHealReports, type HealReportWatch } from './observe/heal-reports.ts';
import { DashboardModel } from './observe/dashboard-model.ts';
import { balancerStatus, instanceStatus, type InstanceStatus } from './observe/status.ts';
import type { BalancerOptions } from './options.ts';
import { createProxyHandler, type ProxyHandler } from './proxy/http-path.ts';
import { createPicker } from './proxy/picker.ts';
import { ProxyCounters } from './proxy/proxy-counters.ts';
import { createSticky, type Sticky } from './proxy/sticky.ts';
import { createTunnels, type Tunnels } from './proxy/tunnels.ts';
import type { ServiceSnapshot, Verdict } from './worker-link.ts';

export interface RuntimeDeps {
  consul: ConsulClient;
  logger: Logger;
  now: () => number;
  startedAt: number;
  /** Worker 0 (or the only process) keeps the dashboard model's incidents and sends alerts. */
  isAdmin: boolean;
  stickySecret: string;
  /** The sticky cookie's name for this service (one per service when several share a host). */
  stickyCookie: string;
  metrics: { ejections: { inc(labels: Record<string, string>): void }; tunnels: { inc(labels: Record<string, string>): void }; heals: { inc(labels: Record<string, string>): void } };
  /** Tell the other workers of a verdict reached here. */
  share: (verdict: Verdict) => void;
  /** The other workers' latest reports for this service. */
  others: () => ServiceSnapshot[];
  /** How many worker processes the balancer runs (--workers; 1 without). */
  workers: number;
  /** The service's passing instances or its catalog entry changed (the route table is rebuilt from them). */
  onTable?: () => void;
}

export interface ServiceRuntime {
  readonly service: string;
  readonly watch: HealthWatch;
  readonly catalog: CatalogWatch;
  readonly failOpen: FailOpen;
  readonly heals: HealReportWatch;
  readonly states: InstanceStates;
  readonly model: DashboardModel;
  readonly counters: ProxyCounters;
  readonly proxy: ProxyHandler;
  readonly tunnels: Tunnels;
  readonly sticky: Sticky;
  instanceCounts(): Record<InstanceStatus, number>;
  status(): ReturnType<typeof balancerStatus>;
  snapshot(): ReturnType<DashboardModel['snapshot']>;
  /** This worker's figures for the others (see worker-link.ts). */
  report(): ServiceSnapshot;
  applyVerdict(verdict: Verdict, from: number): void;
  setMaintenance(id: string, enable: boolean, reason: string): Promise<'ok' | 'unknown-instance'>;
  /** Stops the watches and timers; `close()` then closes the connections to the instances. */
  stop(): void;
  close(): Promise<void>;
}

/** A person reads "refused" more easily than "connect". */
function causeLabel(kind: FailureKind, message: string): string {
  if (kind === 'connect') return /ECONNREFUSED/.test(message) ? 'refused' : 'connect';
  return kind === 'status' ? '5xx' : kind;
}

export function startServiceRuntime(service: string, options: BalancerOptions, deps: RuntimeDeps): ServiceRuntime {
  const { consul, now } = deps;
  const logger = deps.logger.child({ service });
  const states = new InstanceStates({ ejectAfter: options.ejectAfter, ejectForMs: options.ejectFor, slowStartMs: options.slowStart });
  const picker = createPicker(options.strategy, states, Math.random, options.maxPerInstance);
  const model = new DashboardModel(service);
  const counters = new ProxyCounters();
  const labels = { service };
  // Set once the proxy exists; the watch may report a table before that.
  let onRemoved: (id: string) => void = () => undefined;
  let onAdded: (id: string) => void = () => undefined;
  let firstTable = true;

  // Fail open with evidence (fail-open.ts). The catalog watch is made below; the rule reads it when asked.
  let catalogRef: CatalogWatch | undefined;
  let watchRef: HealthWatch | undefined;
  const failOpen = createFailOpen({
    service,
    settings: { thresholdPercent: options.failOpenThreshold, serveUnhealthy: options.failOpenUnhealthy },
    catalog: () => catalogRef?.instances() ?? [],
    probe: (instance) => answersHealthy(instance, Math.max(options.connectTimeout, 500)),
    maintenanceFlag: async (id) => {
      const flag = await consul.kv.get({ key: maintenanceKey(service, id), stale: true, timeout: 2000 } as never);
      return flag !== undefined && flag !== null;
    },
    onChange: () => watchRef?.republish(),
    now,
  });
  let failOpenSaid = '';
  /** Log, event and alert once per change of the rule's state. */
  // The banner, the alerts and the metric are about serving against Consul's
  // list: a rule that is on but may serve nobody (every app really down) is
  // only logged, the ordinary 503 and incidents say the rest.
  let servingSaid = false;
  const noteFailOpen = () => {
    const state = failOpen.state();
    const serving = state.active && state.served.length > 0;
    const key = serving ? `on:${state.served.map((s) => s.id).join(',')}:${state.unhealthy}` : state.active ? 'none' : 'off';
    if (key === failOpenSaid || (key === 'off' && failOpenSaid === '')) {
      failOpenSaid = key;
      return;
    }
    failOpenSaid = key;
    const passing = (watchRef?.table().instances.length ?? 0) - (watchRef?.table().failOpen.size ?? 0);
    const text = state.active ? describeFailOpen(service, passing, state) : `back to Consul's list: ${passing} passing instance(s) of ${service}`;
    if (state.active) logger.warn({ failOpen: true, served: state.served, refused: state.refused }, text);
    else logger.info({ failOpen: false }, text);
    if (!serving && !servingSaid) return;
    servingSaid = serving;
    model.failOpenChanged(serving ? state : { ...state, active: false }, serving || !state.active ? text : `no instance may be served against Consul's list any more: ${text}`, now());
  };

  const watch = watchHealthyInstances({
    extra: (passing, current) => failOpen.extra(passing, current),
    consul,
    service,
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
      noteFailOpen();
      deps.onTable?.();
    },
  });
  watchRef = watch;
  const catalog = watchCatalog({
    consul, service, waitMs: options.consulWait,
    onChange: (previous, next) => {
      model.catalogChanged(previous, next, now(), (id) => watch.table().failOpen.has(id));
      // Why an instance is not passing may have changed: fail-open decides again.
      watch.republish();
      noteFailOpen();
      deps.onTable?.(); // routes declared by instances that are not passing stay in the route table
    },
  });
  catalogRef = catalog;

  const emptyReason = () => {
    const discovery = watch.status();
    if (!discovery.everAnswered) return `no healthy instance yet: waiting for Consul at ${options.consul.origin} (${discovery.lastError ?? 'first query in progress'})`;
    if (!discovery.reachable) return `no healthy instance: Consul at ${options.consul.origin} is unreachable and listed none before`;
    return `no healthy instance of service "${service}" (Consul lists none passing)`;
  };
  const sticky = createSticky({ sticky: options.sticky, stickyCookie: deps.stickyCookie, stickySecret: deps.stickySecret, secure: Boolean(options.tlsCert) });

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
    deps.metrics.ejections.inc({ ...labels, instance: instance.id, cause });
    outOfRotation(instance, cause, message, 'here');
    deps.share({ kind: 'eject', service, instance: instance.id, failure: kind, cause, message });
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
    metrics: { tunnels: { inc: (l) => deps.metrics.tunnels.inc({ ...labels, ...l }) } },
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
      deps.share({ kind: 'readmit', service, instance: id });
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

  // The agents' heals of hung apps: the dashboard, metrics and (below) alerts.
  const healListeners: Array<(report: HealReport) => void> = [];
  const heals = watchHealReports({
    consul, service, waitMs: options.consulWait,
    onReport: (report, history) => {
      model.healReported(report, history, now());
      if (history) return;
      deps.metrics.heals.inc({ ...labels, instance: report.instance, outcome: report.outcome });
      logger[report.outcome === 'healed' || report.outcome === 'restarting' ? 'info' : 'error']({ instance: report.instance, outcome: report.outcome, diagnosis: report.diagnosis, host: report.host, evidence: report.evidenceFile, outForMs: report.outForMs }, `agent heal of ${report.instance}: ${report.outcome}`);
      for (const listener of healListeners) listener(report);
    },
  });

  // Alerts come from worker 0 only, like the dashboard: one alert per incident.
  if (options.alertWebhook && deps.isAdmin) {
    const alerter = createAlerter({
      url: options.alertWebhook, format: options.alertFormat, timeoutMs: options.alertTimeout, service, logger: logger.child({ component: 'alerts' }),
      lookup: (id) => {
        const known = catalog.instances().find((c) => c.id === id) ?? watch.table().byId.get(id);
        return known && { address: known.address, port: known.port, node: known.node, version: known.meta.version ?? null };
      },
    });
    model.incidents.onTransition((transition) => alerter.send(transition));
    healListeners.push((report) => alerter.sendHeal(report));
    // The start is told a second later, with what is served by then: the
    // instances not yet probed join a few milliseconds after the list empties.
    let startAlert: NodeJS.Timeout | undefined;
    model.onFailOpen((active, text, at) => {
      if (active) {
        startAlert = setTimeout(() => {
          startAlert = undefined;
          const state = failOpen.state();
          if (state.active) alerter.sendServiceEvent('fail-open.started', describeFailOpen(service, watch.table().instances.length - watch.table().failOpen.size, state), at);
        }, 1000);
        startAlert.unref();
        return;
      }
      if (startAlert) {
        clearTimeout(startAlert);
        startAlert = undefined;
        return; // over within a second: nothing was told, nothing to end
      }
      alerter.sendServiceEvent('fail-open.ended', text, at);
    });
  }
  // Other workers' closed seconds join this one's traffic series (worker 0).
  const absorbed = new Set<number>();
  const absorber = deps.isAdmin ? setInterval(() => {
    for (const other of deps.others()) {
      if (absorbed.has(other.at)) continue;
      absorbed.add(other.at);
      model.traffic.absorb(other.seconds);
    }
    if (absorbed.size > 1000) absorbed.clear();
  }, 250) : undefined;
  absorber?.unref();

  let reportedUpTo = 0;
  const tunnelsEverywhere = (id: string) => tunnels.openOn(id) + deps.others().reduce((n, s) => n + (s.instances[id]?.tunnels ?? 0), 0);
  return {
    service, watch, catalog, failOpen, heals, states, model, counters, proxy, tunnels, sticky,
    instanceCounts: () => {
      const counts: Record<InstanceStatus, number> = { healthy: 0, 'slow-start': 0, ejected: 0, held: 0, 'fail-open': 0 };
      const table = watch.table();
      for (const instance of table.instances) counts[instanceStatus(states, table, instance.id, now())] += 1;
      return counts;
    },
    status: () => balancerStatus({
      service, startedAt: deps.startedAt, now: now(), strategy: options.strategy, consulAddress: options.consul.origin, discovery: watch.status(),
      table: watch.table(), states, sticky: sticky.enabled(watch.table()), workers: deps.workers, failOpen: failOpen.state(), heals: heals.latest(),
      own: { inFlight: proxy.inFlight(), tunnels: tunnels.open(), tunnelsOn: (id) => tunnels.openOn(id) }, others: deps.others(),
    }),
    snapshot: () => {
      const discovery = watch.status();
      return model.snapshot({
        now: now(), table: watch.table(), states, seriesSeconds: 300, tunnels: tunnelsEverywhere, failOpen: failOpen.state(),
        consul: { reachable: discovery.reachable, unreachableSince: discovery.unreachableSince, lastError: discovery.lastError, address: options.consul.origin },
      });
    },
    report: () => {
      const seconds = model.traffic.closedAfter(reportedUpTo);
      if (seconds.length > 0) reportedUpTo = seconds.at(-1)!.t;
      const instances: ServiceSnapshot['instances'] = {};
      for (const state of states.all()) instances[state.id] = { requests: state.requests, failures: state.failures, outstanding: state.outstanding, tunnels: tunnels.openOn(state.id) };
      return { at: now(), inFlight: proxy.inFlight(), tunnels: tunnels.open(), counters: counters.snapshot(), instances, seconds };
    },
    applyVerdict: (verdict, from) => {
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
    },
    setMaintenance: async (id, enable, reason) => {
      if (!catalog.instances().some((c) => c.id === id)) return 'unknown-instance';
      const key = maintenanceKey(service, id);
      if (enable) await consul.kv.set({ key, value: reason, timeout: 2000 } as never);
      else await consul.kv.del({ key, timeout: 2000 } as never);
      return 'ok';
    },
    stop: () => {
      watch.stop();
      catalog.stop();
      failOpen.stop();
      heals.stop();
      readmission.stop();
      stallDetector.stop();
      clearInterval(absorber);
    },
    close: () => proxy.close(),
  };
}

export type { RoutingTable };
