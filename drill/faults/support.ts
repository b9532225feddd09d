// Helpers the faults share: signals to lab processes, restarts that wait
// until the process is useful again, nftables rules inside a host.
//
// An app runs under the lab's restarter (lab/restarter.ts, systemd's
// Restart=always), and its agent heals it when it stays hung. Signals to an
// app go to the app itself (its PID file), not the restarter. A fault that
// takes an app down on purpose for its window (crash, stop, scale-in, a host
// crash) holds its restarter first, as `systemctl stop` or a host that is
// down would: the app stays down until the revert, which lets the restarter
// start it again (restart below). A fault that leaves the app running but
// hung (hang, hung-*) does not hold it: the agent's heal kills the app and
// the restarter starts it again, as on the servers; hang's own SIGCONT then
// finds nothing to resume. (An app held down past the lab's --heal-after is
// refused, and its agent reports restart-failed: there is no PID to kill.)
import { execFileSync } from 'node:child_process';
import { holdRestarts, releaseRestarts, targetPid } from '../../lab/app-restarts.ts';
import { hostAddress, isAlive, killAll, restartProcess, vipHolder, type LabState } from '../../lab/netns-lab.ts';
import { isAliveMember, passingInstanceIds } from '../../lab/consul-health.ts';
import { waitFor } from '../../lab/processes.ts';
import type { Fault } from './fault.ts';

export function labProcess(lab: LabState, name: string) {
  const proc = lab.processes[name];
  if (!proc) throw new Error(`the lab has no process ${name}`);
  return proc;
}

/** The PID of a lab process now: an app's own, -1 when it has none. */
export function pidNow(lab: LabState, name: string): number {
  return targetPid(labProcess(lab, name)) ?? -1;
}

export function signal(lab: LabState, name: string, sig: NodeJS.Signals): void {
  try {
    process.kill(pidNow(lab, name), sig);
  } catch {
    // already gone: nothing to signal
  }
}

/** For the fault's window, the app's restarter does not start it again (no-op for other processes). */
export function holdDown(lab: LabState, name: string): void {
  holdRestarts(labProcess(lab, name));
}

/** What a host crash does to an app: its restarter dies with it (held, so it cannot start the app in between). */
export function killWithRestarter(lab: LabState, name: string): void {
  const proc = labProcess(lab, name);
  holdRestarts(proc);
  if (!proc.pidFile) return;
  try {
    process.kill(proc.pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/**
 * Stops a lab process for good, SIGKILL when it does not go in 15 s: an app
 * through its restarter (which stops the app, then itself, as `systemctl
 * stop` does), anything else directly.
 */
export async function stopForGood(lab: LabState, name: string, sig: NodeJS.Signals): Promise<void> {
  const proc = labProcess(lab, name);
  const pids = proc.pidFile ? [proc.pid, pidNow(lab, name)] : [proc.pid];
  try {
    process.kill(pids[0]!, sig);
  } catch {
    // gone already
  }
  await waitFor(`${name} to exit`, () => pids.every((pid) => !isAlive(pid)), 15_000).catch(() => killAll(pids));
}

export async function waitGone(lab: LabState, name: string, timeoutMs = 15_000): Promise<void> {
  const pid = pidNow(lab, name);
  await waitFor(`${name} to exit`, () => !isAlive(pid), timeoutMs);
}

export function appUrl(target: string): string {
  return `http://${hostAddress(target)}:3000`;
}

/** Starts a stopped lab process again and waits until it does its job. */
export async function restart(lab: LabState, name: string): Promise<void> {
  const proc = labProcess(lab, name);
  if (proc.pidFile) {
    // An app: its restarter starts it again once released (a new restarter after a host crash).
    releaseRestarts(proc);
    if (!isAlive(proc.pid)) restartProcess(lab, name);
    else signal(lab, name, 'SIGCONT');
  } else if (isAlive(proc.pid)) {
    process.kill(proc.pid, 'SIGCONT');
    return;
  } else restartProcess(lab, name);
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
      // Down for the window, as the fault says (the app's restarter would start it again at once).
      holdDown(lab, proc);
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

/**
 * The revert of a hung-* fault: an app its agent did not heal (the hung
 * process is still there) is killed, so its restarter starts a healthy one;
 * then waits until the target's app answers. Also run when the fault could
 * not be injected whole.
 */
export async function reviveIfStillHung(lab: LabState, target: string, hungPid: number): Promise<void> {
  if (pidNow(lab, target) === hungPid && isAlive(hungPid)) killAll([hungPid]);
  await waitFor(`${target}'s app answering /healthz`, async () => (await fetch(`${appUrl(target)}/healthz`, { signal: AbortSignal.timeout(1000) })).ok, 20_000);
}

/** Injects a hung-* fault; when that fails halfway, the app is revived before the error goes on. */
export async function hangApp(lab: LabState, target: string, hang: () => Promise<() => void>): Promise<() => Promise<void>> {
  const pid = pidNow(lab, target);
  let undo: () => void = () => undefined;
  try {
    undo = await hang();
  } catch (error) {
    await reviveIfStillHung(lab, target, pid);
    throw error;
  }
  return async () => {
    undo();
    await reviveIfStillHung(lab, target, pid);
  };
}

