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
 * and what healing (issue 20) needs: a session on its own node, its own heal
 * slot (read the others' to count them), its own heal report.
 */
export function sempreAgentPolicy(service: string, id: string, node: string = id): PolicySpec {
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
 * maintenance flags the dashboard sets. With several services it may read
 * each (Consul's service list shows a token only those, which is what
 * --routing routes follows) and nothing else.
 */
export function balancerPolicy(services: readonly string[]): PolicySpec {
  return {
    name: 'sempre-balancer',
    description: `sempre-balancer for ${services.join(', ')}: read health and heal reports, set maintenance flags`,
    rules: [
      ...services.map((service) => `service "${service}" { policy = "read" }`),
      'node_prefix "" { policy = "read" }',
      ...services.map((service) => `key_prefix "sempre/maintenance/${service}/" { policy = "write" }`),
      // The agents' heal reports, for the dashboard, status, metrics and alerts.
      ...services.map((service) => `key_prefix "sempre/heal-report/${service}/" { policy = "read" }`),
      '',
    ].join('\n'),
  };
}
