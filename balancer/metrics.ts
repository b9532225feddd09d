// Prometheus metrics for the balancer, on its own registry (served by the
// admin listener at /metrics).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface BalancerMetrics {
  registry: Registry;
  requests: Counter<'code'>;
  duration: Histogram<never>;
  attempts: Counter<'instance' | 'outcome'>;
  retries: Counter<'reason'>;
  ejections: Counter<'instance' | 'cause'>;
  noInstance: Counter<never>;
  refused: Counter<'reason'>;
  saturated: Counter<never>;
  tunnels: Counter<'outcome'>;
}

export function createMetrics(gauges: { instances: () => Record<string, number>; consulReachable: () => boolean; tableVersion: () => number; tunnelsByInstance: () => Record<string, number> }): BalancerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sempre_balancer_' });
  new Gauge({
    name: 'sempre_instances', help: 'Instances in the routing table by state', labelNames: ['state'], registers: [registry],
    collect() {
      this.reset();
      for (const [state, count] of Object.entries(gauges.instances())) this.set({ state }, count);
    },
  });
  new Gauge({ name: 'sempre_consul_reachable', help: '1 when the last Consul query succeeded', registers: [registry], collect() { this.set(gauges.consulReachable() ? 1 : 0); } });
  new Gauge({ name: 'sempre_routing_table_version', help: 'Routing table generation (increments on each change)', registers: [registry], collect() { this.set(gauges.tableVersion()); } });
  new Gauge({
    name: 'sempre_tunnels_open', help: 'WebSocket and other upgraded connections open, by instance', labelNames: ['instance'], registers: [registry],
    collect() {
      this.reset();
      for (const [instance, count] of Object.entries(gauges.tunnelsByInstance())) this.set({ instance }, count);
    },
  });
  return {
    registry,
    requests: new Counter({ name: 'sempre_requests_total', help: 'Client requests answered, by status code', labelNames: ['code'], registers: [registry] }),
    duration: new Histogram({ name: 'sempre_request_duration_seconds', help: 'Client request duration including retries', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    attempts: new Counter({ name: 'sempre_upstream_attempts_total', help: 'Attempts sent to instances, by outcome (ok, connect, reset, timeout, status)', labelNames: ['instance', 'outcome'], registers: [registry] }),
    retries: new Counter({ name: 'sempre_retries_total', help: 'Attempts retried on another instance, by reason', labelNames: ['reason'], registers: [registry] }),
    ejections: new Counter({ name: 'sempre_ejections_total', help: 'Instances ejected by passive health checking', labelNames: ['instance', 'cause'], registers: [registry] }),
    noInstance: new Counter({ name: 'sempre_no_instance_total', help: 'Requests answered 503 because no instance was available', registers: [registry] }),
    refused: new Counter({ name: 'sempre_client_refused_total', help: 'Clients refused by a limit (rate-limit, connections-per-client, max-connections, body-too-large, headers-too-large, slow-client, malformed)', labelNames: ['reason'], registers: [registry] }),
    saturated: new Counter({ name: 'sempre_saturated_total', help: 'Requests answered 503 because every instance had --max-per-instance requests in flight', registers: [registry] }),
    tunnels: new Counter({ name: 'sempre_tunnels_total', help: 'Tunnels (WebSocket and other upgrades) by outcome: opened, failed (no instance could take it), closed (by either end), closed-idle, closed-ejected, closed-removed, closed-drain, closed-shutdown', labelNames: ['outcome'], registers: [registry] }),
  };
}
