// Fail open, with evidence. When Consul lists too few passing instances of a
// service (fewer than --fail-open-threshold percent of those it knows; none,
// by default, with two), the balancer reads *why* each of the others is not
// passing. One whose only failing checks say the health signal went quiet —
// its TTL check expired (the agent is frozen, dead, or Consul refuses its
// updates: a revoked token) or its node's Consul agent is unreachable
// (serfHealth) — and that answers the balancer's own probe of its health
// path is served, with passive health, retries, the stall detector and
// stickiness as usual. Never one in maintenance (service, node, or the
// dashboard's flag in Consul's KV, which a frozen agent cannot apply), one
// that Consul no longer knows, one that never passed since this balancer
// started, or one whose own health endpoint (or whose agent) reports a
// failure — unless --fail-open-unhealthy asks, as ALB and Envoy do, to serve
// them all when every candidate's health endpoint fails.
//
// AWS's load balancers and Envoy's panic threshold fail open blindly; this
// reads Consul's evidence first (DESIGN.md, "When every instance looks down").
import type { Instance } from '../../shared/instance.ts';
import type { CatalogInstance } from './catalog-watch.ts';

export interface FailOpenSettings {
  /** Fail open when fewer than this percentage of the known instances pass; 0: never. */
  thresholdPercent: number;
  /** When every candidate's own health endpoint fails too, serve them anyway. */
  serveUnhealthy: boolean;
}

/** Why a known instance that is not passing may (or may not) be served by this rule. */
export interface Evidence {
  eligible: boolean;
  /** Consul's catalog has not caught up yet (no failing check): only an instance already in the table may stay, never one added. */
  pending?: boolean;
  /** For a person: "its agent is silent (TTL expired)", "in maintenance", "its health endpoint reports: …". */
  reason: string;
}

const SERVICE_MAINTENANCE = /^_service_maintenance:/;
const NODE_MAINTENANCE = '_node_maintenance';
// Consul writes this at the start of an expired TTL check's output (then the last output before the timeout).
const TTL_EXPIRED = /^TTL expired/;

/** Reads the instance's checks: is the only thing wrong the health signal itself? */
export function readEvidence(instance: CatalogInstance, maintenanceFlag: boolean): Evidence {
  if (instance.health === 'maintenance' || instance.checks.some((c) => SERVICE_MAINTENANCE.test(c.id) || c.id === NODE_MAINTENANCE)) {
    return { eligible: false, reason: `in maintenance (${instance.maintenanceReason ?? 'node maintenance'})` };
  }
  if (maintenanceFlag) return { eligible: false, reason: 'in maintenance: its flag is set in Consul (the dashboard), its agent has not applied it' };
  const failing = instance.checks.filter((c) => c.status === 'critical' || c.status === 'warning');
  if (failing.length === 0) return { eligible: true, pending: true, reason: 'just left Consul\'s passing list (its checks not read yet)' };
  const reasons: string[] = [];
  for (const check of failing) {
    if (check.id === 'serfHealth') reasons.push('its node\'s Consul agent is unreachable (serfHealth)');
    else if (check.ofService && TTL_EXPIRED.test(check.output)) reasons.push('its agent is silent: TTL expired (agent frozen or stopped, or Consul refuses its updates)');
    else return { eligible: false, reason: `its check reports a failure: ${check.output || check.status}` };
  }
  return { eligible: true, reason: reasons.join('; ') };
}

/** Whether so few pass that the rule applies. */
export function shouldFailOpen(passing: number, known: number, thresholdPercent: number): boolean {
  if (thresholdPercent <= 0 || known === 0) return false;
  return passing * 100 < thresholdPercent * known;
}

/** One line for the dashboard's banner, the log and the alert. */
export function describeFailOpen(service: string, passing: number, state: FailOpenState): string {
  const listed = passing === 0 ? `Consul lists no passing instance of ${service}` : `Consul lists only ${passing} passing instance(s) of ${service}`;
  if (state.served.length === 0) return `${listed}; no other instance may be served: ${state.refused.map((r) => `${r.id} ${r.reason}`).join('; ') || 'none known'}`;
  const why = [...new Set(state.served.map((s) => s.reason.split(';')[0]!))].join('; ');
  return `${listed}; serving the ${state.served.length} that ${state.unhealthy ? 'still accept connections although their health endpoints fail' : 'answer their health probe'} (${state.served.map((s) => s.id).join(', ')}): ${why}`;
}

export function asInstance(entry: CatalogInstance, service: string): Instance {
  return { id: entry.id, service, node: entry.node, address: entry.address, port: entry.port, tags: entry.tags, meta: entry.meta };
}

export interface FailOpenDeps {
  service: string;
  settings: FailOpenSettings;
  catalog: () => readonly CatalogInstance[];
  /** The balancer's own probe of the instance's health path (2xx in time). */
  probe: (instance: Instance) => Promise<boolean>;
  /** Whether the dashboard's maintenance flag is set for the instance (Consul KV); undefined when it cannot be read. */
  maintenanceFlag: (id: string) => Promise<boolean | undefined>;
  /** The served set changed: rebuild the routing table. */
  onChange: () => void;
  now?: () => number;
  probeIntervalMs?: number;
}

export interface FailOpenState {
  active: boolean;
  since: number | undefined;
  /** The instances served by this rule, with the evidence. */
  served: Array<{ id: string; reason: string }>;
  /** Known instances not served, with why. */
  refused: Array<{ id: string; reason: string }>;
  /** Served although every candidate's health endpoint fails (--fail-open-unhealthy). */
  unhealthy: boolean;
}

export interface FailOpen {
  /**
   * The instances to add to Consul's passing list, decided now from what is
   * known (never waits): `passing` is Consul's list, `current` the ids in the
   * table in force (those may stay until their first probe answers).
   */
  extra(passing: readonly Instance[], current: ReadonlySet<string>): Instance[];
  state(): FailOpenState;
  stop(): void;
}

interface Probe { healthy: boolean | undefined; flag: boolean | undefined; running: boolean }

export function createFailOpen(deps: FailOpenDeps): FailOpen {
  const now = deps.now ?? Date.now;
  const everPassed = new Set<string>();
  const probes = new Map<string, Probe>();
  let state: FailOpenState = { active: false, since: undefined, served: [], refused: [], unhealthy: false };
  let candidates: CatalogInstance[] = [];
  let timer: NodeJS.Timeout | undefined;

  const probeAll = () => {
    for (const entry of candidates) {
      let probe = probes.get(entry.id);
      if (!probe) probes.set(entry.id, (probe = { healthy: undefined, flag: undefined, running: false }));
      if (probe.running) continue;
      probe.running = true;
      const p = probe;
      void Promise.all([deps.probe(asInstance(entry, deps.service)), deps.maintenanceFlag(entry.id).catch(() => undefined)]).then(([healthy, flag]) => {
        p.running = false;
        const changed = p.healthy !== healthy || (flag !== undefined && p.flag !== flag);
        p.healthy = healthy;
        if (flag !== undefined) p.flag = flag;
        if (changed && state.active) deps.onChange();
      });
    }
  };

  const decide = (passing: readonly Instance[], current: ReadonlySet<string>): Instance[] => {
    for (const instance of passing) everPassed.add(instance.id);
    const passingIds = new Set(passing.map((i) => i.id));
    const known = deps.catalog().filter((c) => everPassed.has(c.id));
    // Consul's own maintenance takes an instance out of the count; the
    // dashboard's flag (read only while the rule is on) refuses it below
    // instead, so that reading it cannot switch the rule off and on.
    const counted = known.filter((c) => c.health !== 'maintenance');
    const active = shouldFailOpen(passing.length, Math.max(counted.length, passing.length), deps.settings.thresholdPercent);
    if (!active) {
      if (state.active) state = { active: false, since: undefined, served: [], refused: [], unhealthy: false };
      candidates = [];
      // Probe results and flags are for this episode only: the next one reads them afresh.
      probes.clear();
      return [];
    }
    const served: Array<{ entry: CatalogInstance; reason: string }> = [];
    const refused: Array<{ id: string; reason: string }> = [];
    const answering: Array<{ entry: CatalogInstance; reason: string }> = [];
    candidates = [];
    for (const entry of known) {
      if (passingIds.has(entry.id)) continue;
      const evidence = readEvidence(entry, probes.get(entry.id)?.flag === true);
      if (!evidence.eligible) {
        refused.push({ id: entry.id, reason: evidence.reason });
        if (!evidence.reason.startsWith('in maintenance')) answering.push({ entry, reason: evidence.reason });
        continue;
      }
      candidates.push(entry);
      const probe = probes.get(entry.id);
      // Unprobed yet, or its checks not read yet: an instance in the table a
      // moment ago stays until its probe answers and Consul's catalog tells
      // why it left (no gap); one not in the table waits for both.
      const stays = current.has(entry.id) && probe?.healthy !== false && (probe?.healthy === undefined || evidence.pending === true);
      if ((probe?.healthy === true && !evidence.pending) || stays) served.push({ entry, reason: probe?.healthy === true ? `${evidence.reason}; answers its health probe` : `${evidence.reason}; its health probe is running` });
      else {
        refused.push({ id: entry.id, reason: probe?.healthy === false ? `${evidence.reason}, but its health probe fails` : `${evidence.reason}; probing its health path` });
        if (probe?.healthy === false) answering.push({ entry, reason: `${evidence.reason}, and its health probe fails` });
      }
    }
    let unhealthy = false;
    if (served.length === 0 && passing.length === 0 && deps.settings.serveUnhealthy && answering.length > 0 && candidates.length > 0 && candidates.every((c) => probes.get(c.id)?.healthy === false)) {
      // --fail-open-unhealthy: every candidate's health endpoint fails; serve them all, as ALB and Envoy would.
      unhealthy = true;
      served.push(...answering.map(({ entry, reason }) => ({ entry, reason: `${reason}; served anyway (--fail-open-unhealthy)` })));
      refused.splice(0, refused.length, ...refused.filter((r) => !served.some((s) => s.entry.id === r.id)));
    }
    for (const id of [...probes.keys()]) if (!candidates.some((c) => c.id === id) && !known.some((c) => c.id === id)) probes.delete(id);
    state = {
      active: true,
      since: state.active ? state.since : now(),
      served: served.map(({ entry, reason }) => ({ id: entry.id, reason })),
      refused,
      unhealthy,
    };
    if (!timer) {
      timer = setInterval(() => {
        if (state.active) probeAll();
      }, deps.probeIntervalMs ?? 500);
      timer.unref();
    }
    probeAll();
    return served.map(({ entry }) => asInstance(entry, deps.service));
  };

  return {
    extra: decide,
    state: () => state,
    stop: () => clearInterval(timer),
  };
}
