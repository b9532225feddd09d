// The least-privilege ACL policies sempre needs, one per role. Consul's ACL
// resource for services is the service *name*: every instance of "web" shares
// it, so the registration agent's `service "web"` write would let its token
// deregister other hosts' instances through the catalog API. cluster.hcl
// therefore blocks /v1/catalog/register and /v1/catalog/deregister on every
// agent's HTTP API: the agent endpoints only touch the local agent's own
// services, so a token is only good on the host it was given to.

export interface PolicySpec {
  name: string;
  description: string;
  rules: string;
}

/** The Consul agent of one host: registers its node, reads services for anti-entropy. */
export function consulAgentPolicy(node: string): PolicySpec {
  return {
    name: `consul-agent-${node}`,
    description: `Consul agent on ${node}: its own node entry`,
    rules: `node "${node}" { policy = "write" }\nservice_prefix "" { policy = "read" }\n`,
  };
}

/** Anonymous local requests (the default token): DNS lookups on 8600 and nothing else. */
export function dnsPolicy(): PolicySpec {
  return {
    name: 'dns-read',
    description: 'Consul DNS: read nodes, services and prepared queries',
    rules: 'node_prefix "" { policy = "read" }\nservice_prefix "" { policy = "read" }\nquery_prefix "" { policy = "read" }\n',
  };
}

/**
 * sempre-agent on one app host: its service, only its own maintenance flag,
 * and for healing a hung app (agent/heal/): sessions on its own node, its own
 * heal-lock key (the others' read, to count them) and its own heal report.
 */
export function sempreAgentPolicy(service: string, id: string, node: string): PolicySpec {
  return {
    name: `sempre-agent-${id}`,
    description: `sempre-agent for instance ${id} of ${service}`,
    rules: [
      `service "${service}" { policy = "write" }`,
      `key "sempre/maintenance/${service}/${id}" { policy = "read" }`,
      `session "${node}" { policy = "write" }`,
      `key_prefix "sempre/heal-lock/${service}/" { policy = "read" }`,
      `key "sempre/heal-lock/${service}/${id}" { policy = "write" }`,
      `key "sempre/heal-report/${service}/${id}" { policy = "write" }`,
      '',
    ].join('\n'),
  };
}

/**
 * The balancer: reads the health of its services; writes only the
 * maintenance flags the dashboard sets and its dashboard's history (one key
 * per service, shared by a pair: balancer/observe/history-store.ts). With several services it may read
 * each (Consul's service list shows a token only those, which is what
 * --routing routes follows) and nothing else.
 */
export function balancerPolicy(services: readonly string[]): PolicySpec {
  return {
    name: 'sempre-balancer',
    description: `sempre-balancer for ${services.join(', ')}: read health, set maintenance flags, keep the dashboard's history`,
    rules: [
      ...services.map((service) => `service "${service}" { policy = "read" }`),
      'node_prefix "" { policy = "read" }',
      ...services.map((service) => `key_prefix "sempre/maintenance/${service}/" { policy = "write" }`),
      // The agents' heal reports, for the dashboard and alerts.
      ...services.map((service) => `key_prefix "sempre/heal-report/${service}/" { policy = "read" }`),
      // The dashboard's events, incidents and alert state, kept across restarts.
      ...services.map((service) => `key "sempre/history/${service}" { policy = "write" }`),
      '',
    ].join('\n'),
  };
}
