// GET /_sempre/status: the routing table as the balancer sees it, for people
// and scripts. With --workers, counts are every worker's together.
import type { LogOutputStats } from '../../shared/log-output.ts';
import type { DiscoveryStatus } from '../discovery/consul-watch.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';
import type { InstanceStates } from '../health/instance-state.ts';
import type { ServiceSnapshot } from '../worker-link.ts';
import type { FailOpenState } from '../discovery/fail-open.ts';
import type { HealReport } from '../../shared/heal-report.ts';

export type InstanceStatus = 'healthy' | 'slow-start' | 'ejected' | 'held' | 'fail-open';

/** Ejection first: it is what decides routing, held or not. */
export function instanceStatus(states: InstanceStates, table: RoutingTable, id: string, now: number): InstanceStatus {
  if (states.get(id)?.ejected) return 'ejected';
  if (table.held.has(id)) return 'held';
  if (table.failOpen.has(id)) return 'fail-open';
  return states.weight(id, now) < 1 ? 'slow-start' : 'healthy';
}

export interface StatusInput {
  service: string;
  startedAt: number;
  now: number;
  strategy: string;
  consulAddress: string;
  discovery: DiscoveryStatus;
  table: RoutingTable;
  states: InstanceStates;
  sticky: boolean;
  /** How many worker processes the balancer runs (--workers; 1 without). */
  workers: number;
  /** Serving against Consul's list (fail-open.ts), with the evidence per instance. */
  failOpen?: FailOpenState;
  /** The agents' latest heal of each instance (shared/heal-report.ts). */
  heals?: readonly HealReport[];
  /** This process's own figures. */
  own: Pick<ServiceSnapshot, 'inFlight' | 'tunnels'> & { tunnelsOn: (id: string) => number };
  /** The other workers' latest reports of this service (none yet from a worker just started). */
  others: readonly ServiceSnapshot[];
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

export function balancerStatus(input: StatusInput) {
  const { table, states, discovery, others, now } = input;
  const sum = (pick: (s: ServiceSnapshot) => number) => others.reduce((total, s) => total + pick(s), 0);
  return {
    service: input.service,
    startedAt: new Date(input.startedAt).toISOString(),
    uptimeSeconds: Math.round((now - input.startedAt) / 1000),
    strategy: input.strategy,
    workers: input.workers,
    // The figures below add up this process's and these reports: fewer than
    // `workers` while a worker starts (it reports twice a second) or, with
    // --routing routes, has not found this service yet.
    workersReporting: 1 + others.filter((s) => !s.retired).length,
    consul: {
      address: input.consulAddress,
      reachable: discovery.reachable,
      everAnswered: discovery.everAnswered,
      lastContactAt: iso(discovery.lastContactAt),
      unreachableSince: iso(discovery.unreachableSince),
      lastError: discovery.lastError ?? null,
    },
    table: { version: table.version, size: table.instances.length },
    failOpen: input.failOpen?.active
      ? { active: true, since: iso(input.failOpen.since), served: input.failOpen.served, refused: input.failOpen.refused, unhealthy: input.failOpen.unhealthy }
      : { active: false },
    // Without the evidence record itself (it is on the app host, and in the dashboard).
    heals: (input.heals ?? []).map(({ evidence: _evidence, ...report }) => report),
    inFlight: input.own.inFlight + sum((s) => s.inFlight),
    tunnels: input.own.tunnels + sum((s) => s.tunnels),
    sticky: input.sticky,
    instances: table.instances.map((instance) => {
      const state = states.get(instance.id);
      const elsewhere = (field: 'requests' | 'failures' | 'outstanding' | 'tunnels') => sum((s) => s.instances[instance.id]?.[field] ?? 0);
      return {
        id: instance.id,
        node: instance.node,
        address: instance.address,
        port: instance.port,
        state: instanceStatus(states, table, instance.id, now),
        weight: Math.round(states.weight(instance.id, now) * 100) / 100,
        outstanding: (state?.outstanding ?? 0) + elsewhere('outstanding'),
        tunnels: input.own.tunnelsOn(instance.id) + elsewhere('tunnels'),
        requests: (state?.requests ?? 0) + elsewhere('requests'),
        failures: (state?.failures ?? 0) + elsewhere('failures'),
        ejections: state?.ejections ?? 0,
        since: state ? new Date(state.since).toISOString() : null,
        lastFailure: state?.lastFailure ? { ...state.lastFailure, at: new Date(state.lastFailure.at).toISOString() } : null,
        tags: instance.tags,
        meta: instance.meta,
      };
    }),
  };
}

/** The log output in the status: lines dropped so far and, while stdout is not read, since when. */
export function logOutputStatus(stats: LogOutputStats, now: number) {
  const { blocked } = stats;
  return {
    droppedLines: stats.droppedLines,
    blocked: blocked && { since: new Date(blocked.since).toISOString(), seconds: Math.round((now - blocked.since) / 1000), droppedLines: blocked.droppedLines },
  };
}
