// Helpers the faults share: signals to lab processes, restarts that wait
// until the process is useful again, nftables rules inside a host.
import { execFileSync } from 'node:child_process';
import { hostAddress, isAlive, restartProcess, vipHolder, type LabState } from '../../lab/netns-lab.ts';
import { isAliveMember, passingInstanceIds } from '../../lab/consul-health.ts';
import { waitFor } from '../../lab/processes.ts';
import type { Fault } from './fault.ts';

export function labProcess(lab: LabState, name: string) {
  const proc = lab.processes[name];
  if (!proc) throw new Error(`the lab has no process ${name}`);
  return proc;
}

export function signal(lab: LabState, name: string, sig: NodeJS.Signals): void {
  const proc = labProcess(lab, name);
  try {
    process.kill(proc.pid, sig);
  } catch {
    // already gone: nothing to signal
  }
}

export async function waitGone(lab: LabState, name: string, timeoutMs = 15_000): Promise<void> {
  const proc = labProcess(lab, name);
  await waitFor(`${name} to exit`, () => !isAlive(proc.pid), timeoutMs);
}

export function appUrl(target: string): string {
  return `http://${hostAddress(target)}:3000`;
}

/** Starts a stopped lab process again and waits until it does its job. */
export async function restart(lab: LabState, name: string): Promise<void> {
  const proc = labProcess(lab, name);
  if (isAlive(proc.pid)) {
    process.kill(proc.pid, 'SIGCONT');
    return;
  }
  restartProcess(lab, name);
  if (/-agent$/.test(name)) {
    await waitFor(`${name} registered and passing`, async () => (await passingInstanceIds(lab.consulUrl, lab.service)).includes(proc.host), 20_000);
  } else if (name === 'infra-consul') {
    await waitFor('the Consul server to elect itself leader', async () => (await (await fetch(`${lab.consulUrl}/v1/status/leader`, { signal: AbortSignal.timeout(1000) })).text()).includes(':'), 20_000);
  } else if (/-consul$/.test(name)) {
    // A client agent listens on its own host's loopback only: ask the server whether it joined.
    await waitFor(`${name} to join the cluster`, () => isAliveMember(lab.consulUrl, proc.host), 20_000);
  } else if (/balancer$/.test(name)) {
    await waitFor(`${name} answering`, async () => (await fetch(`http://${hostAddress(proc.host)}:8081/healthz`, { signal: AbortSignal.timeout(1000) })).ok, 20_000);
  } else if (/-keepalived$/.test(name)) {
    // Nothing to wait for: it starts as BACKUP and, without preemption, stays so.
  } else await waitFor(`${name} answering /healthz`, async () => (await fetch(`${appUrl(proc.host)}/healthz`, { signal: AbortSignal.timeout(1000) })).ok, 20_000);
}

const TABLE = 'sempre_fault';

/** Blocks traffic between a host and infra inside the host's namespace: drop (blackhole) or TCP reset. */
export function blockInfra(lab: LabState, host: string, verdict: 'drop' | 'reject with tcp reset'): void {
  const namespace = lab.hosts[host]?.namespace;
  if (!namespace) throw new Error(`the lab has no host ${host}`);
  const infra = hostAddress('infra');
  // A reset answers TCP; other packets (Consul's UDP gossip) are dropped.
  const rule = verdict === 'drop' ? 'drop' : 'meta l4proto tcp reject with tcp reset';
  const ruleset = `table inet ${TABLE} {
  chain input { type filter hook input priority 0; policy accept; ip saddr ${infra} ${rule}; ${verdict === 'drop' ? '' : `ip saddr ${infra} drop;`} }
  chain output { type filter hook output priority 0; policy accept; ip daddr ${infra} ${rule}; ${verdict === 'drop' ? '' : `ip daddr ${infra} drop;`} }
}`;
  execFileSync('ip', ['netns', 'exec', namespace, 'nft', '-f', '-'], { input: ruleset, stdio: ['pipe', 'ignore', 'pipe'] });
}

export function unblock(lab: LabState, host: string): void {
  const namespace = lab.hosts[host]?.namespace;
  if (!namespace) return;
  try {
    execFileSync('ip', ['netns', 'exec', namespace, 'nft', 'delete', 'table', 'inet', TABLE], { stdio: 'ignore' });
  } catch {
    // no rule left: nothing to remove
  }
}

export async function setAppFault(target: string, query: string): Promise<void> {
  const response = await fetch(`${appUrl(target)}/_fault?${query}`, { method: 'PUT', signal: AbortSignal.timeout(2000) });
  if (!response.ok) throw new Error(`${target}'s fault switch answered HTTP ${response.status}`);
}

/** A fault that signals one of the target host's processes and restarts it when the fault ends. */
export function signalAndRestart(name: string, summary: string, processOf: (target: string) => string, sig: NodeJS.Signals): Fault {
  return {
    name,
    summary,
    async inject({ lab, target }) {
      const proc = processOf(target);
      signal(lab, proc, sig);
      await waitGone(lab, proc);
      return () => restart(lab, proc);
    },
  };
}

/** The balancer host holding the pair's virtual address, or a clear error when there is no pair. */
export function activeBalancerHost(lab: LabState): string {
  const holder = vipHolder(lab);
  if (!holder) throw new Error('no balancer holds the virtual address: start the lab with `sudo ./sempre lab up --balancers 2`');
  return holder;
}
