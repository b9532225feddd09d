// Maintenance asked for from a dashboard travels through Consul's KV store:
// the balancer writes this key, the instance's own agent sees it on its next
// heartbeat and puts its service in maintenance with its local Consul agent.
// Every balancer then drops the instance, and it works with ACLs (write on
// this prefix for the balancer, read for agents) wherever the agents run.
export const MAINTENANCE_PREFIX = 'sempre/maintenance';

export function maintenanceKey(service: string, instanceId: string): string {
  return `${MAINTENANCE_PREFIX}/${service}/${instanceId}`;
}

export const DASHBOARD_REASON_PREFIX = 'dashboard: ';
