// The two questions the lab tooling asks Consul, asked one way everywhere.

/** IDs of the service's instances whose checks all pass. */
export async function passingInstanceIds(consulUrl: string, service: string): Promise<string[]> {
  const response = await fetch(`${consulUrl}/v1/health/service/${service}?passing`, { signal: AbortSignal.timeout(1000) });
  return ((await response.json()) as Array<{ Service: { ID: string } }>).map((entry) => entry.Service.ID);
}

/** Whether the Consul agent of this node is an alive member of the cluster. */
export async function isAliveMember(consulUrl: string, node: string): Promise<boolean> {
  const response = await fetch(`${consulUrl}/v1/agent/members`, { signal: AbortSignal.timeout(1000) });
  return ((await response.json()) as Array<{ Name: string; Status: number }>).some((m) => m.Name === node && m.Status === 1);
}
