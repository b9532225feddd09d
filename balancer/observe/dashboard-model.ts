// What the dashboard shows, assembled from the balancer's own view (routing
// table, ejections) and Consul's full catalog (checks, maintenance): one
// instance list with a state per instance, the event log, incidents and the
// traffic series. Pure bookkeeping: it never talks to Consul itself.
import type { Instance } from '../../shared/instance.ts';
import type { CatalogInstance } from '../discovery/catalog-watch.ts';
import type { FailOpenState } from '../discovery/fail-open.ts';
import type { HealReport } from '../../shared/heal-report.ts';
import { EventLog, type DashboardEvent } from './events.ts';
import { IncidentTracker, type IncidentRecord, type IncidentSummary } from './incidents.ts';
import { HISTORY_LIMITS, storedEventOf, storedIncidentOf, type HistoryDoc } from './history-doc.ts';
import type { InstanceStates } from '../health/instance-state.ts';
import type { RoutingTable, TableDiff } from '../discovery/routing-table.ts';
import { TrafficSeries, type SecondPoint } from './traffic-series.ts';

export type DashboardState = 'healthy' | 'slow-start' | 'ejected' | 'held' | 'fail-open' | 'critical' | 'draining' | 'maintenance';

export interface DashboardInstance {
  id: string;
  node: string;
  address: string;
  port: number;
  state: DashboardState;
  since: number;
  version: string | null;
  tags: string[];
  checkOutput: string;
  /** The agent's own check, maintenance aside (deploys wait for it). */
  checkStatus: string;
  maintenanceReason: string | null;
  inFlight: number;
  tunnels: number;
  requests: number;
  failures: number;
  ejections: number;
  lastFailure: { kind: string; message: string; at: number } | null;
  incidents: IncidentSummary;
  /** The agent's latest heal of this instance (restart of a hung app), with its evidence. */
  heal: HealReport | null;
}

export interface DashboardSnapshot {
  now: number;
  service: string;
  serving: number;
  /** Serving against Consul's list (fail-open.ts): the banner's text and the evidence per instance. */
  failOpen: { since: number; text: string; served: Array<{ id: string; reason: string }> } | null;
  consul: { reachable: boolean; since: number | null; lastError: string | null; address: string };
  instances: DashboardInstance[];
  events: DashboardEvent[];
  series: SecondPoint[];
}

/** The agent's own maintenance reason while it drains before stopping. */
const DRAINING = /^sempre-agent stopping/;

export class DashboardModel {
  readonly events = new EventLog();
  readonly incidents = new IncidentTracker();
  readonly traffic = new TrafficSeries();
  private catalog: readonly CatalogInstance[] = [];
  private readonly since = new Map<string, { state: DashboardState; at: number }>();
  private readonly service: string;
  private failOpen: { since: number; text: string; served: Array<{ id: string; reason: string }> } | null = null;
  private readonly heals = new Map<string, HealReport>();
  private readonly failOpenListeners: Array<(active: boolean, text: string, at: number) => void> = [];
  /** The other balancers' alert state, as last read from the history store (theirs to change). */
  private alertsOfOthers: HistoryDoc['alerts'] = {};

  constructor(service: string) {
    this.service = service;
  }

  tableChanged(diff: TableDiff, now: number, inRotation: (id: string) => boolean): void {
    for (const instance of diff.added) {
      this.events.add({ at: now, kind: 'joined', instance: instance.id, detail: `${instance.address}:${instance.port}` });
      if (inRotation(instance.id)) this.incidents.cameBack(instance.id, now);
    }
    for (const instance of diff.removed) {
      const known = this.catalog.find((c) => c.id === instance.id);
      const why = known?.health === 'maintenance' ? `maintenance: ${known.maintenanceReason}` : known && known.health !== 'passing' ? `${known.health} in Consul` : 'no longer passing in Consul';
      this.events.add({ at: now, kind: 'left', instance: instance.id, cause: known?.health === 'maintenance' ? 'maintenance' : 'consul', detail: why });
    }
  }

  ejected(instance: Instance, cause: string, detail: string, now: number): void {
    this.events.add({ at: now, kind: 'ejected', instance: instance.id, cause, detail });
    this.incidents.wentDown(instance.id, cause, detail, false, now);
  }

  readmitted(id: string, now: number): void {
    this.events.add({ at: now, kind: 'readmitted', instance: id, detail: 'answers its health probe again' });
    this.incidents.cameBack(id, now);
  }

  /**
   * An agent restarted (or is restarting, or gave up on) its hung app: an
   * event, and the diagnosis among the causes of the instance's incident.
   * `history`: found in Consul at start, shown but not an event.
   */
  healReported(report: HealReport, history: boolean, now: number): void {
    this.heals.set(report.instance, report);
    if (history) return;
    const out = report.outForMs !== null ? ` (out ${(report.outForMs / 1000).toFixed(1)} s)` : '';
    this.events.add({ at: now, kind: 'heal', instance: report.instance, cause: report.outcome, detail: `${report.diagnosis}${out}` });
    if (report.outcome !== 'not-fixable') this.incidents.note(report.instance, report.outcome === 'needs-person' ? 'needs a person' : 'hung', report.diagnosis, now);
  }

  /** Called once per change of the fail-open rule's state (alerts listen). */
  onFailOpen(listener: (active: boolean, text: string, at: number) => void): void {
    this.failOpenListeners.push(listener);
  }

  /**
   * The balancer started (or changed, or stopped) serving against Consul's
   * list. An instance it serves is in rotation: not an incident, whatever
   * Consul says of its check.
   */
  failOpenChanged(state: FailOpenState, text: string, now: number): void {
    const wasActive = this.failOpen !== null;
    this.failOpen = state.active ? { since: state.since ?? now, text, served: state.served } : null;
    this.events.add({ at: now, kind: state.active ? 'fail-open-on' : 'fail-open-off', cause: 'fail-open', detail: text });
    for (const served of state.served) this.incidents.cameBack(served.id, now);
    if (wasActive !== state.active) for (const listener of this.failOpenListeners) listener(state.active, text, now);
  }

  catalogChanged(previous: readonly CatalogInstance[], next: readonly CatalogInstance[], now: number, servedAnyway: (id: string) => boolean = () => false): void {
    this.catalog = next;
    const before = new Map(previous.map((c) => [c.id, c]));
    for (const instance of next) {
      const old = before.get(instance.id);
      before.delete(instance.id);
      if (!old) this.events.add({ at: now, kind: 'registered', instance: instance.id, detail: `${instance.address}:${instance.port}${instance.meta.version ? ` version ${instance.meta.version}` : ''}` });
      if (old?.health === instance.health) continue;
      if (instance.health === 'maintenance') {
        const draining = DRAINING.test(instance.maintenanceReason ?? '');
        this.events.add({ at: now, kind: 'maintenance-on', instance: instance.id, cause: draining ? 'draining' : 'maintenance', detail: instance.maintenanceReason ?? '' });
        this.incidents.wentDown(instance.id, 'maintenance', instance.maintenanceReason ?? '', true, now);
      } else if (instance.health === 'critical' || instance.health === 'warning') {
        this.events.add({ at: now, kind: 'check-critical', instance: instance.id, cause: 'check', detail: instance.checkOutput });
        // Served by the fail-open rule: its signal failed, the instance did not leave rotation.
        if (!servedAnyway(instance.id)) this.incidents.wentDown(instance.id, 'check', instance.checkOutput, false, now);
      } else if (old) {
        this.events.add({ at: now, kind: old.health === 'maintenance' ? 'maintenance-off' : 'check-passing', instance: instance.id, detail: instance.checkOutput });
      }
    }
    for (const gone of before.values()) {
      this.events.add({ at: now, kind: 'deregistered', instance: gone.id, detail: gone.health === 'maintenance' ? 'after draining' : `was ${gone.health}` });
      if (gone.health !== 'maintenance') this.incidents.wentDown(gone.id, 'deregistered', `was ${gone.health}`, false, now);
    }
  }

  /** What the history store writes for this balancer (`self` names it): see history-doc.ts. */
  toHistory(self: string): HistoryDoc {
    const incidents: HistoryDoc['incidents'] = {};
    for (const [id, records] of this.incidents.allRecords()) if (records.length > 0) incidents[id] = records.map((r) => storedIncidentOf(r, self));
    return {
      version: 1,
      events: this.events.recent(HISTORY_LIMITS.events).map((e) => storedEventOf(e, self)),
      incidents,
      alerts: { ...this.alertsOfOthers, [self]: { open: this.incidents.announcedOpen() } },
    };
  }

  /**
   * Entries read from the history store join the model, as history: no
   * listener hears of them (no alert, no metric). `restore` at start: this
   * balancer's own open incidents go on (incidents.ts, merge). Returns
   * whether anything was new here.
   */
  mergeHistory(doc: HistoryDoc, self: string, now: number, restore?: { serving: (id: string) => boolean }): boolean {
    const added = this.events.merge(doc.events.map((e) => ({ ...e, history: restore || e.by === self ? 'before-restart' as const : 'other-balancer' as const })));
    const records = new Map<string, IncidentRecord[]>(Object.entries(doc.incidents));
    const announced = new Set(doc.alerts[self]?.open ?? []);
    const changed = this.incidents.merge(records, now, restore && { announced, mine: (r) => r.by === self, serving: restore.serving });
    this.alertsOfOthers = Object.fromEntries(Object.entries(doc.alerts).filter(([by]) => by !== self));
    return added > 0 || changed;
  }

  consulReachability(reachable: boolean, detail: string, now: number): void {
    this.events.add({ at: now, kind: reachable ? 'consul-reachable' : 'consul-unreachable', detail });
  }

  snapshot(input: {
    now: number;
    table: RoutingTable;
    states: InstanceStates;
    /** Open tunnels (WebSockets) per instance. */
    tunnels?: (id: string) => number;
    consul: { reachable: boolean; unreachableSince: number | undefined; lastError: string | undefined; address: string };
    seriesSeconds: number;
    failOpen?: FailOpenState;
  }): DashboardSnapshot {
    const { now, table, states } = input;
    const ids = [...new Set([...this.catalog.map((c) => c.id), ...table.instances.map((i) => i.id)])].sort();
    const instances = ids.map((id): DashboardInstance => {
      const catalog = this.catalog.find((c) => c.id === id);
      const routed = table.byId.get(id);
      const state = states.get(id);
      let view: DashboardState;
      if (catalog?.health === 'maintenance') view = DRAINING.test(catalog.maintenanceReason ?? '') ? 'draining' : 'maintenance';
      else if (state?.ejected) view = 'ejected';
      else if (routed && table.failOpen.has(id)) view = 'fail-open';
      else if (!routed || catalog?.health === 'critical' || catalog?.health === 'warning') view = routed ? 'ejected' : 'critical';
      else if (table.held.has(id)) view = 'held';
      else view = states.weight(id, now) < 1 ? 'slow-start' : 'healthy';
      const previous = this.since.get(id);
      if (!previous || previous.state !== view) this.since.set(id, { state: view, at: previous ? now : (state?.since ?? now) });
      return {
        id,
        node: catalog?.node ?? routed?.node ?? '',
        address: catalog?.address ?? routed?.address ?? '',
        port: catalog?.port ?? routed?.port ?? 0,
        state: view,
        since: this.since.get(id)!.at,
        version: (catalog?.meta.version ?? routed?.meta.version) || null,
        tags: catalog?.tags ?? [...(routed?.tags ?? [])],
        checkOutput: catalog?.checkOutput ?? '',
        checkStatus: catalog?.checkStatus ?? 'unknown',
        maintenanceReason: catalog?.maintenanceReason ?? null,
        inFlight: state?.outstanding ?? 0,
        tunnels: input.tunnels?.(id) ?? 0,
        requests: state?.requests ?? 0,
        failures: state?.failures ?? 0,
        ejections: state?.ejections ?? 0,
        lastFailure: state?.lastFailure ?? null,
        incidents: this.incidents.summary(id, now),
        heal: this.heals.get(id) ?? null,
      };
    });
    return {
      now,
      service: this.service,
      serving: instances.filter((i) => i.state === 'healthy' || i.state === 'slow-start' || i.state === 'held' || i.state === 'fail-open').length,
      failOpen: this.failOpen,
      consul: { reachable: input.consul.reachable, since: input.consul.unreachableSince ?? null, lastError: input.consul.lastError ?? null, address: input.consul.address },
      instances,
      events: this.events.recent(200),
      series: this.traffic.series(now, input.seriesSeconds),
    };
  }
}
