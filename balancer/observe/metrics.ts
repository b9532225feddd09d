// Prometheus metrics for the balancer, on its own registry (served by the
// admin listener at /metrics). The request path's counters are plain numbers
// (ProxyCounters) published here at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { DURATION_BUCKETS, type ProxyCounters } from '../proxy/proxy-counters.ts';

export interface BalancerMetrics {
  registry: Registry;
  ejections: Counter<'service' | 'instance' | 'cause'>;
  refused: Counter<'reason'>;
  tunnels: Counter<'service' | 'outcome'>;
  heals: Counter<'service' | 'instance' | 'outcome'>;
}

/** One service's figures (with --workers: every worker's together). */
export interface ServiceMetricSource {
  service: string;
  instances: () => Record<string, number>;
  tableVersion: () => number;
  /** 1 while the service is served against Consul's list (fail-open.ts). */
  failOpen: () => number;
  tunnelsByInstance: () => Record<string, number>;
  proxy: () => ProxyCounters;
}

export interface MetricSources {
  consulReachable: () => boolean;
  services: () => ServiceMetricSource[];
  /** Requests no route matched (--routing routes). */
  noRoute: () => number;
  /** Routes two services declare (--routing routes). */
  routeConflicts: () => number;
  /** Log lines dropped while stdout was not read, every worker's together. */
  logLinesDropped: () => number;
}

/** A metric whose values are computed at scrape time. */
function computed(registry: Registry, name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue<string>[]): void {
  registry.registerMetric({
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) as unknown as MetricObjectWithValues<MetricValue<string>>,
    reset: () => undefined,
  } as never);
}

export function createMetrics(sources: MetricSources): BalancerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sempre_balancer_' });
  const each = <T>(pick: (source: ServiceMetricSource) => T) => sources.services().map((source) => ({ service: source.service, value: pick(source) }));
  new Gauge({
    name: 'sempre_instances', help: 'Instances in the routing table by service and state', labelNames: ['service', 'state'], registers: [registry],
    collect() {
      this.reset();
      for (const { service, value } of each((s) => s.instances())) for (const [state, count] of Object.entries(value)) this.set({ service, state }, count);
    },
  });
  new Gauge({
    name: 'sempre_fail_open', help: '1 while a service is served against Consul\'s list: too few pass, and instances whose only failure is a silent health signal (and that answer their health probe) are served', labelNames: ['service'], registers: [registry],
    collect() {
      this.reset();
      for (const { service, value } of each((s) => s.failOpen())) this.set({ service }, value);
    },
  });
  new Gauge({ name: 'sempre_consul_reachable', help: '1 when the last Consul query succeeded', registers: [registry], collect() { this.set(sources.consulReachable() ? 1 : 0); } });
  new Gauge({
    name: 'sempre_routing_table_version', help: 'Routing table generation per service (increments on each change)', labelNames: ['service'], registers: [registry],
    collect() {
      this.reset();
      for (const { service, value } of each((s) => s.tableVersion())) this.set({ service }, value);
    },
  });
  new Gauge({
    name: 'sempre_tunnels_open', help: 'WebSocket and other upgraded connections open, by service and instance', labelNames: ['service', 'instance'], registers: [registry],
    collect() {
      this.reset();
      for (const { service, value } of each((s) => s.tunnelsByInstance())) for (const [instance, count] of Object.entries(value)) this.set({ service, instance }, count);
    },
  });
  new Gauge({ name: 'sempre_route_conflicts', help: 'Routes declared by two services (the first by name serves them; see status)', registers: [registry], collect() { this.set(sources.routeConflicts()); } });
  computed(registry, 'sempre_log_lines_dropped_total', 'Log lines dropped because standard output was not read fast enough (--log-buffer full)', 'counter', () => [{ labels: {}, value: sources.logLinesDropped() }]);
  computed(registry, 'sempre_no_route_total', 'Requests no route matched (404), with --routing routes', 'counter', () => [{ labels: {}, value: sources.noRoute() }]);
  const perService = (build: (service: string, counters: ProxyCounters) => MetricValue<string>[]) => () => each((s) => s.proxy()).flatMap(({ service, value }) => build(service, value));
  computed(registry, 'sempre_requests_total', 'Client requests answered, by service and status code', 'counter', perService((service, c) => [...c.byStatus].map(([code, value]) => ({ labels: { service, code: String(code) }, value }))));
  computed(registry, 'sempre_request_duration_seconds', 'Client request duration including retries', 'histogram', perService((service, c) => {
    const values: MetricValue<string>[] = [];
    let cumulative = 0;
    DURATION_BUCKETS.forEach((le, i) => {
      cumulative += c.durationCounts[i]!;
      values.push({ metricName: 'sempre_request_duration_seconds_bucket', labels: { service, le: String(le) }, value: cumulative } as MetricValue<string>);
    });
    cumulative += c.durationCounts.at(-1)!;
    values.push({ metricName: 'sempre_request_duration_seconds_bucket', labels: { service, le: '+Inf' }, value: cumulative } as MetricValue<string>);
    values.push({ metricName: 'sempre_request_duration_seconds_sum', labels: { service }, value: c.durationSum } as MetricValue<string>);
    values.push({ metricName: 'sempre_request_duration_seconds_count', labels: { service }, value: cumulative } as MetricValue<string>);
    return values;
  }));
  computed(registry, 'sempre_upstream_attempts_total', 'Attempts sent to instances, by outcome (ok, connect, reset, timeout, status)', 'counter', perService((service, c) =>
    [...c.attempts].flatMap(([instance, byOutcome]) => [...byOutcome].map(([outcome, value]) => ({ labels: { service, instance, outcome }, value })))));
  computed(registry, 'sempre_retries_total', 'Attempts retried on another instance, by reason', 'counter', perService((service, c) => Object.entries(c.retries).map(([reason, value]) => ({ labels: { service, reason }, value }))));
  computed(registry, 'sempre_no_instance_total', 'Requests answered 503 because no instance was available', 'counter', perService((service, c) => [{ labels: { service }, value: c.noInstance }]));
  computed(registry, 'sempre_saturated_total', 'Requests answered 503 because every instance had --max-per-instance requests in flight', 'counter', perService((service, c) => [{ labels: { service }, value: c.saturated }]));
  return {
    registry,
    ejections: new Counter({ name: 'sempre_ejections_total', help: 'Instances ejected by passive health checking', labelNames: ['service', 'instance', 'cause'], registers: [registry] }),
    refused: new Counter({ name: 'sempre_client_refused_total', help: 'Clients refused by a limit (rate-limit, connections-per-client, max-connections, body-too-large, headers-too-large, slow-client, malformed)', labelNames: ['reason'], registers: [registry] }),
    tunnels: new Counter({ name: 'sempre_tunnels_total', help: 'Tunnels (WebSocket and other upgrades) by outcome: opened, failed (no instance could take it), closed (by either end), closed-idle, closed-ejected, closed-removed, closed-drain, closed-shutdown', labelNames: ['service', 'outcome'], registers: [registry] }),
    heals: new Counter({ name: 'sempre_heals_total', help: 'Restarts of hung apps by their agents, by outcome: restarting, healed, not-back, restart-failed, needs-person (the budget is spent)', labelNames: ['service', 'instance', 'outcome'], registers: [registry] }),
  };
}
