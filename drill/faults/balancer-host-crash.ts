import { execFileSync } from 'node:child_process';
import { forgetTcpConnections, killAll, namespacePids } from '../../lab/netns-lab.ts';
import type { Fault } from './fault.ts';
import { activeBalancerHost, holdDown, restart, waitGone } from './support.ts';

/** Start order after the host "reboots": Consul, the app and its agent, the balancer, keepalived last. */
const ORDER = ['-consul', '', '-agent', 'balancer', '-keepalived'];
const rank = (name: string) => ORDER.findIndex((suffix) => (suffix === '' ? /^app\d+$/.test(name) : name.endsWith(suffix)));

export const balancerHostCrash: Fault = {
  name: 'balancer-host-crash',
  summary: 'crash the host holding the virtual address: kill -9 all its processes (keepalived too) and take its network down (lab up --balancers 2; the target is ignored); the host comes back when the fault ends',
  async inject({ lab, say, setTarget }) {
    const holder = activeBalancerHost(lab);
    setTarget?.(holder);
    const namespace = lab.hosts[holder]!.namespace;
    const names = Object.values(lab.processes).filter((p) => p.host === holder).map((p) => p.name);
    say(`the virtual address is on ${holder}: crashing it (${names.join(', ')}, and its network)`);
    // A crashed host answers nothing at all: no reset, no ARP, and no last
    // VRRP advert: the network goes first, then every process in the host
    // (keepalived's VRRP child too, which would otherwise say goodbye).
    execFileSync('ip', ['-n', namespace, 'link', 'set', 'eth0', 'down']);
    // An app's restarter dies too: held first, so it does not start the app in between.
    for (const name of names) holdDown(lab, name);
    killAll(namespacePids(namespace));
    for (const name of names) await waitGone(lab, name);
    // ... and its kernel's connections die with it.
    const left = forgetTcpConnections(namespace);
    if (left > 0) say(`${left} TCP sockets of ${holder} outlived the crash (no ss -K here): a client reusing one of their ports may wait for its timeout`);
    return async () => {
      // A rebooted host has forgotten the virtual address keepalived had added.
      try {
        execFileSync('ip', ['-n', namespace, 'addr', 'del', `${lab.vip}/24`, 'dev', 'eth0'], { stdio: 'ignore' });
      } catch {
        // it did not have it
      }
      execFileSync('ip', ['-n', namespace, 'link', 'set', 'eth0', 'up']);
      for (const name of [...names].sort((a, b) => rank(a) - rank(b))) await restart(lab, name);
    };
  },
};
