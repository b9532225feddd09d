// The questions the lab tooling asks Consul, asked one way everywhere.
import { fetchInHost } from './fetch-in-host.ts';
import type { LabState } from './netns-lab.ts';

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

/**
 * A check as the host's own Consul agent holds it, asked from inside the host
 * (its agent listens on the host's loopback). Consul's catalog may say
 * otherwise: the agent syncs a check with the token it was registered with,
 * and skips the sync when that token is refused.
 */
export function localCheck(lab: LabState, host: string, checkId: string): { status: string; output: string } | undefined {
  const answer = fetchInHost(lab, host, 'http://127.0.0.1:8500/v1/agent/checks', { headers: { 'x-consul-token': lab.consulToken } });
  if ('error' in answer) throw new Error(`${host}'s Consul agent: ${answer.error}`);
  if (answer.status !== 200) throw new Error(`${host}'s Consul agent answered HTTP ${answer.status}: ${answer.body.trim()}`);
  const check = (JSON.parse(answer.body) as Record<string, { Status: string; Output: string }>)[checkId];
  return check ? { status: check.Status, output: check.Output } : undefined;
}
