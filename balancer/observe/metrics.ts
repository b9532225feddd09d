// Prometheus metrics for the balancer, on its own registry (served by the
// admin listener at /metrics). The request path's counters are plain numbers
// (ProxyCounters) published here at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { DURATION_BUCKETS, type ProxyCounters } from '../proxy/proxy-counters.ts';

export interface BalancerMetrics {
  registry: Registry;
  ejections: Counter<'instance' | 'cause'>;
  refused: Counter<'reason'>;
  tunnels: Counter<'outcome'>;
}

export interface MetricSources {
  instances: () => Record<string, number>;
  consulReachable: () => boolean;
  tableVersion: () => number;
  tunnelsByInstance: () => Record<string, number>;
  /** The request path's counters (all workers' together where there are several). */
  proxy: () => ProxyCounters;
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
  new Gauge({
    name: 'sempre_instances', help: 'Instances in the routing table by state', labelNames: ['state'], registers: [registry],
    collect() {
      this.reset();
      for (const [state, count] of Object.entries(sources.instances())) this.set({ state }, count);
    },
  });
  new Gauge({ name: 'sempre_consul_reachable', help: '1 when the last Consul query succeeded', registers: [registry], collect() { this.set(sources.consulReachable() ? 1 : 0); } });
  new Gauge({ name: 'sempre_routing_table_version', help: 'Routing table generation (increments on each change)', registers: [registry], collect() { this.set(sources.tableVersion()); } });
  new Gauge({
    name: 'sempre_tunnels_open', help: 'WebSocket and other upgraded connections open, by instance', labelNames: ['instance'], registers: [registry],
    collect() {
      this.reset();
      for (const [instance, count] of Object.entries(sources.tunnelsByInstance())) this.set({ instance }, count);
    },
  });
  computed(registry, 'sempre_requests_total', 'Client requests answered, by status code', 'counter', () => [...sources.proxy().byStatus].map(([code, value]) => ({ labels: { code: String(code) }, value })));
  computed(registry, 'sempre_request_duration_seconds', 'Client request duration including retries', 'histogram', () => {
    const counters = sources.proxy();
    const values: MetricValue<string>[] = [];
    let cumulative = 0;
    DURATION_BUCKETS.forEach((le, i) => {
      cumulative += counters.durationCounts[i]!;
      values.push({ metricName: 'sempre_request_duration_seconds_bucket', labels: { le: String(le) }, value: cumulative } as MetricValue<string>);
    });
    cumulative += counters.durationCounts.at(-1)!;
    values.push({ metricName: 'sempre_request_duration_seconds_bucket', labels: { le: '+Inf' }, value: cumulative } as MetricValue<string>);
    values.push({ metricName: 'sempre_request_duration_seconds_sum', labels: {}, value: counters.durationSum } as MetricValue<string>);
    values.push({ metricName: 'sempre_request_duration_seconds_count', labels: {}, value: cumulative } as MetricValue<string>);
    return values;
  });
  computed(registry, 'sempre_upstream_attempts_total', 'Attempts sent to instances, by outcome (ok, connect, reset, timeout, status)', 'counter', () =>
    [...sources.proxy().attempts].flatMap(([instance, byOutcome]) => [...byOutcome].map(([outcome, value]) => ({ labels: { instance, outcome }, value }))));
  computed(registry, 'sempre_retries_total', 'Attempts retried on another instance, by reason', 'counter', () => Object.entries(sources.proxy().retries).map(([reason, value]) => ({ labels: { reason }, value })));
  computed(registry, 'sempre_no_instance_total', 'Requests answered 503 because no instance was available', 'counter', () => [{ labels: {}, value: sources.proxy().noInstance }]);
  computed(registry, 'sempre_saturated_total', 'Requests answered 503 because every instance had --max-per-instance requests in flight', 'counter', () => [{ labels: {}, value: sources.proxy().saturated }]);
  return {
    registry,
    ejections: new Counter({ name: 'sempre_ejections_total', help: 'Instances ejected by passive health checking', labelNames: ['instance', 'cause'], registers: [registry] }),
    refused: new Counter({ name: 'sempre_client_refused_total', help: 'Clients refused by a limit (rate-limit, connections-per-client, max-connections, body-too-large, headers-too-large, slow-client, malformed)', labelNames: ['reason'], registers: [registry] }),
    tunnels: new Counter({ name: 'sempre_tunnels_total', help: 'Tunnels (WebSocket and other upgrades) by outcome: opened, failed (no instance could take it), closed (by either end), closed-idle, closed-ejected, closed-removed, closed-drain, closed-shutdown', labelNames: ['outcome'], registers: [registry] }),
  };
}
