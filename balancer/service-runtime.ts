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
import { watchCatalog, type CatalogInstance, type CatalogWatch } from './discovery/catalog-watch.ts';
import { watchHealthyInstances, type DiscoveryStatus, type HealthWatch } from './discovery/consul-watch.ts';
import { createFailOpen, type FailOpen } from './discovery/fail-open.ts';
import type { RoutingTable } from './discovery/routing-table.ts';
import type { FailureKind } from './health/failure-kind.ts';
import { InstanceStates } from './health/instance-state.ts';
import { answersHealthy, startReadmission } from './health/readmission.ts';
import { startStallDetector } from './health/stall-detector.ts';
import { connectAlerts } from './observe/alert-wiring.ts';
import { watchHealReports, type HealReportWatch } from './observe/heal-reports.ts';
import { DashboardModel } from './observe/dashboard-model.ts';
import { startHistoryStore } from './observe/history-store.ts';
import { failOpenNotifier } from './observe/fail-open-notice.ts';
import { balancerStatus, instanceStatus, type InstanceStatus } from './observe/status.ts';
import type { BalancerOptions } from './options.ts';
import { createProxyHandler, type ProxyHandler } from './proxy/http-path.ts';
import { instanceDepartures, type Departures } from './proxy/departures.ts';
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

/** The pieces a service runtime is made of, which the balancer reads directly. */
export interface ServiceRuntimeParts {
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
}

export interface ServiceRuntime extends ServiceRuntimeParts {
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

/** The pieces of one service's runtime, for the functions below that connect and read them. */
interface Parts extends ServiceRuntimeParts {
  readonly options: BalancerOptions;
  readonly deps: RuntimeDeps;
  readonly logger: Logger;
}

export function startServiceRuntime(service: string, options: BalancerOptions, deps: RuntimeDeps): ServiceRuntime {
  const { now } = deps;
  const logger = deps.logger.child({ service });
  const states = new InstanceStates({ ejectAfter: options.ejectAfter, ejectForMs: options.ejectFor, slowStartMs: options.slowStart });
  const picker = createPicker(options.strategy, states, Math.random, options.maxPerInstance);
  const model = new DashboardModel(service);
  // Events, incidents and alert state kept in Consul across restarts, shared with a pair's other balancer.
  const history = deps.isAdmin ? startHistoryStore({ consul: deps.consul, service, model, logger, now, options, serving: (id) => watch.table().byId.has(id) && !states.isEjected(id) }) : undefined;
  const counters = new ProxyCounters();
  // Set once the proxy and tunnels exist; the watch may report a table before that.
  const departures: Departures = { removed: () => undefined, added: () => undefined };
  const { watch, catalog, failOpen } = watchService({ service, options, deps, logger, states, model, departures });

  const emptyReason = () => noInstanceReason(service, options.consul.origin, watch.status());
  const sticky = createSticky({ sticky: options.sticky, stickyCookie: deps.stickyCookie, stickySecret: deps.stickySecret, secure: Boolean(options.tlsCert) });
  const onEjected = (instance: Instance, kind: FailureKind, message: string) => ejectedHere(parts, instance, kind, message);
  const proxy = createProxyHandler({
    settings: options, logger: logger.child({ component: 'proxy' }), table: () => watch.table(), states, picker, sticky, counters, emptyReason, now, onEjected,
    onRequest: (status, durationMs, servedBy) => model.traffic.record(status, durationMs, servedBy, now()),
  });
  const tunnels = createTunnels({
    settings: options, logger: logger.child({ component: 'tunnels' }), table: () => watch.table(), states, picker, sticky, emptyReason, now, onEjected,
    metrics: { tunnels: { inc: (l) => deps.metrics.tunnels.inc({ service, ...l }) } },
  });
  Object.assign(departures, instanceDepartures({
    proxy, tunnels,
    listed: (id) => watch.table().byId.has(id),
    inMaintenance: (id) => catalog.instances().some((c) => c.id === id && c.health === 'maintenance'),
  }));

  // Alerts come from worker 0 only, like the dashboard: one alert per incident.
  const sendHealAlert = options.alertWebhook && deps.isAdmin
    ? connectAlerts({
      webhook: { url: options.alertWebhook, format: options.alertFormat, timeoutMs: options.alertTimeout }, service, logger: logger.child({ component: 'alerts' }),
      model, failOpen, catalog: () => catalog.instances(), table: () => watch.table(),
    })
    : undefined;
  const heals = watchServiceHeals({ service, options, deps, logger, model }, sendHealAlert);
  const parts: Parts = { service, options, deps, logger, watch, catalog, failOpen, heals, states, model, counters, proxy, tunnels, sticky };
  const readmission = startReadmissionProbes(parts);
  const stallDetector = startStallWatch(parts);
  const absorber = deps.isAdmin ? absorbOtherWorkersTraffic(model, deps.others) : undefined;

  return {
    service, watch, catalog, failOpen, heals, states, model, counters, proxy, tunnels, sticky,
    instanceCounts: () => instanceCounts(parts),
    status: () => serviceStatus(parts),
    snapshot: () => serviceSnapshot(parts),
    report: workerReporter(parts),
    applyVerdict: (verdict, from) => applyVerdict(parts, verdict, from),
    setMaintenance: (id, enable, reason) => setMaintenance(parts, id, enable, reason),
    stop: () => {
      watch.stop();
      catalog.stop();
      failOpen.stop();
      heals.stop();
      readmission.stop();
      stallDetector.stop();
      clearInterval(absorber);
      history?.stop();
    },
    close: async () => {
      await Promise.all([proxy.close(), history?.flush()]);
    },
  };
}

interface WatchParts {
  service: string;
  options: BalancerOptions;
  deps: RuntimeDeps;
  logger: Logger;
  states: InstanceStates;
  model: DashboardModel;
  /** Told of each instance Consul's passing list loses or gains. */
  departures: Departures;
}

/** The watch of the service's healthy instances (with fail-open's additions) and of its whole catalog entry, for people. */
function watchService({ service, options, deps, logger, states, model, departures }: WatchParts): { watch: HealthWatch; catalog: CatalogWatch; failOpen: FailOpen } {
  const { consul, now } = deps;
  let firstTable = true;
  // Fail open with evidence (fail-open.ts). The catalog watch is made below; the rule reads it when asked.
  let catalogRef: CatalogWatch | undefined;
  let watchRef: HealthWatch | undefined;
  const failOpen = createServiceFailOpen(service, options, deps, () => catalogRef?.instances() ?? [], () => watchRef?.republish());
  const noteFailOpen = failOpenNotifier({ service, failOpen, table: () => watchRef?.table(), logger, model, now });
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
      for (const instance of diff.removed) departures.removed(instance.id);
      for (const instance of diff.added) departures.added(instance.id);
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
  return { watch, catalog, failOpen };
}

function createServiceFailOpen(service: string, options: BalancerOptions, deps: RuntimeDeps, catalog: () => readonly CatalogInstance[], republish: () => void): FailOpen {
  const { consul, now } = deps;
  return createFailOpen({
    service,
    settings: { thresholdPercent: options.failOpenThreshold, serveUnhealthy: options.failOpenUnhealthy },
    catalog,
    probe: (instance) => answersHealthy(instance, Math.max(options.connectTimeout, 500)),
    maintenanceFlag: async (id) => {
      const flag = await consul.kv.get({ key: maintenanceKey(service, id), stale: true, timeout: 2000 } as never);
      return flag !== undefined && flag !== null;
    },
    onChange: republish,
    now,
  });
}

/** Why there is no instance to send a request to, for the 503 body. */
function noInstanceReason(service: string, consulOrigin: string, discovery: DiscoveryStatus): string {
  if (!discovery.everAnswered) return `no healthy instance yet: waiting for Consul at ${consulOrigin} (${discovery.lastError ?? 'first query in progress'})`;
  if (!discovery.reachable) return `no healthy instance: Consul at ${consulOrigin} is unreachable and listed none before`;
  return `no healthy instance of service "${service}" (Consul lists none passing)`;
}

// An instance leaves rotation by passive health (a failed attempt or dial,
// a stall) here or in another worker: stop sending to it, retry what it has
// not answered elsewhere, close its tunnels so clients reconnect to a live one.
function outOfRotation(parts: Parts, instance: Instance, cause: string, message: string, from: string): void {
  parts.logger.warn({ instance: instance.id, cause, detail: message, ejectForMs: parts.options.ejectFor, ...(from === 'here' ? {} : { seenBy: from }) }, from === 'here' ? 'instance ejected by passive health check' : 'instance ejected: another worker saw it fail');
  parts.model.ejected(instance, cause, message, parts.deps.now());
  parts.proxy.abandon(instance.id, `ejected (${cause})`);
  parts.tunnels.closeInstance(instance.id, 'closed-ejected');
}

/** Ejected by what this worker saw: counted, taken out of rotation, and told to the other workers. */
function ejectedHere(parts: Parts, instance: Instance, kind: FailureKind, message: string, cause = causeLabel(kind, message)): void {
  parts.deps.metrics.ejections.inc({ service: parts.service, instance: instance.id, cause });
  outOfRotation(parts, instance, cause, message, 'here');
  parts.deps.share({ kind: 'eject', service: parts.service, instance: instance.id, failure: kind, cause, message });
}

/** Ejected instances are probed and readmitted when they answer again; the other workers are told. */
function startReadmissionProbes({ service, options, deps, logger, states, model, watch }: Parts): { stop(): void } {
  const { now } = deps;
  return startReadmission({
    states, table: () => watch.table(), logger, probeTimeoutMs: Math.max(options.connectTimeout, 500), now,
    onReadmitted: (id) => {
      model.readmitted(id, now());
      deps.share({ kind: 'readmit', service, instance: id });
    },
  });
}

/** --stall-after: an instance that owes answers for too long and fails its probe is ejected (0: off). */
function startStallWatch(parts: Parts): { stop(): void } {
  const { options, states, logger, proxy, deps: { now } } = parts;
  if (options.stallAfter === 0) return { stop: () => undefined };
  return startStallDetector({
    stallAfterMs: options.stallAfter,
    probeTimeoutMs: options.stallProbeTimeout,
    states,
    table: () => parts.watch.table(),
    oldestUnanswered: (id) => proxy.oldestUnanswered(id),
    logger,
    now,
    onStalled: (instance, message) => {
      if (states.eject(instance.id, 'timeout', message, now())) ejectedHere(parts, instance, 'timeout', message, 'stall');
    },
  });
}

// The agents' heals of hung apps: the dashboard, metrics and alerts.
function watchServiceHeals(parts: Pick<Parts, 'service' | 'options' | 'deps' | 'logger' | 'model'>, sendAlert: ((report: HealReport) => void) | undefined): HealReportWatch {
  const { service, options, deps, logger, model } = parts;
  return watchHealReports({
    consul: deps.consul, service, waitMs: options.consulWait,
    onReport: (report, history) => {
      model.healReported(report, history, deps.now());
      if (history) return;
      deps.metrics.heals.inc({ service, instance: report.instance, outcome: report.outcome });
      logger[report.outcome === 'healed' || report.outcome === 'restarting' ? 'info' : 'error']({ instance: report.instance, outcome: report.outcome, diagnosis: report.diagnosis, host: report.host, evidence: report.evidenceFile, outForMs: report.outForMs }, `agent heal of ${report.instance}: ${report.outcome}`);
      sendAlert?.(report);
    },
  });
}

// Other workers' closed seconds join this one's traffic series (worker 0).
function absorbOtherWorkersTraffic(model: DashboardModel, others: () => ServiceSnapshot[]): NodeJS.Timeout {
  const absorbed = new Set<number>();
  const absorber = setInterval(() => {
    for (const other of others()) {
      if (absorbed.has(other.at)) continue;
      absorbed.add(other.at);
      model.traffic.absorb(other.seconds);
    }
    if (absorbed.size > 1000) absorbed.clear();
  }, 250);
  absorber.unref();
  return absorber;
}

function instanceCounts({ watch, states, deps }: Parts): Record<InstanceStatus, number> {
  const counts: Record<InstanceStatus, number> = { healthy: 0, 'slow-start': 0, ejected: 0, held: 0, 'fail-open': 0 };
  const table = watch.table();
  for (const instance of table.instances) counts[instanceStatus(states, table, instance.id, deps.now())] += 1;
  return counts;
}

function serviceStatus({ service, options, deps, watch, states, sticky, failOpen, heals, proxy, tunnels }: Parts): ReturnType<typeof balancerStatus> {
  return balancerStatus({
    service, startedAt: deps.startedAt, now: deps.now(), strategy: options.strategy, consulAddress: options.consul.origin, discovery: watch.status(),
    table: watch.table(), states, sticky: sticky.enabled(watch.table()), workers: deps.workers, failOpen: failOpen.state(), heals: heals.latest(),
    own: { inFlight: proxy.inFlight(), tunnels: tunnels.open(), tunnelsOn: (id) => tunnels.openOn(id) }, others: deps.others(),
  });
}

function serviceSnapshot({ options, deps, watch, states, failOpen, model, tunnels }: Parts): ReturnType<DashboardModel['snapshot']> {
  const discovery = watch.status();
  const tunnelsEverywhere = (id: string) => tunnels.openOn(id) + deps.others().reduce((n, s) => n + (s.instances[id]?.tunnels ?? 0), 0);
  return model.snapshot({
    now: deps.now(), table: watch.table(), states, seriesSeconds: 300, tunnels: tunnelsEverywhere, failOpen: failOpen.state(),
    consul: { reachable: discovery.reachable, unreachableSince: discovery.unreachableSince, lastError: discovery.lastError, address: options.consul.origin },
  });
}

/** This worker's figures for the others: each call carries the traffic seconds closed since the last. */
function workerReporter({ deps, model, states, proxy, tunnels, counters }: Parts): () => ServiceSnapshot {
  let reportedUpTo = 0;
  return () => {
    const seconds = model.traffic.closedAfter(reportedUpTo);
    if (seconds.length > 0) reportedUpTo = seconds.at(-1)!.t;
    const instances: ServiceSnapshot['instances'] = {};
    for (const state of states.all()) instances[state.id] = { requests: state.requests, failures: state.failures, outstanding: state.outstanding, tunnels: tunnels.openOn(state.id) };
    return { at: deps.now(), inFlight: proxy.inFlight(), tunnels: tunnels.open(), counters: counters.snapshot(), instances, seconds };
  };
}

/** Another worker ejected or readmitted an instance: this one follows. */
function applyVerdict(parts: Parts, verdict: Verdict, from: number): void {
  const { watch, states, model, logger, deps: { now } } = parts;
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
  if (states.eject(instance.id, verdict.failure ?? 'connect', message, now())) outOfRotation(parts, instance, verdict.cause ?? 'connect', message, `worker ${from}`);
}

/** The dashboard's maintenance switch: a flag in Consul's KV store that the instance's agent follows. */
async function setMaintenance({ service, catalog, deps: { consul } }: Parts, id: string, enable: boolean, reason: string): Promise<'ok' | 'unknown-instance'> {
  if (!catalog.instances().some((c) => c.id === id)) return 'unknown-instance';
  const key = maintenanceKey(service, id);
  if (enable) await consul.kv.set({ key, value: reason, timeout: 2000 } as never);
  else await consul.kv.del({ key, timeout: 2000 } as never);
  return 'ok';
}

export type { RoutingTable };
