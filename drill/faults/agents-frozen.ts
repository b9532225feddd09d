// Every app host's sempre-agent frozen at once, as a bad agent release rolled
// out everywhere would leave them: the apps keep answering, but nobody renews
// their TTL checks, so Consul soon lists no passing instance at all (the
// balancer's fail-open rule is what keeps the page up). The target is ignored.
import { appHosts } from '../../lab/netns-lab.ts';
import type { Fault } from './fault.ts';
import { labProcess, signal } from './support.ts';

export const agentsFrozen: Fault = {
  name: 'agents-frozen',
  summary: "SIGSTOP every app host's agent (the target is ignored): Consul expires every TTL check while the apps still answer; SIGCONT when the fault ends",
  async inject({ lab, say }) {
    // Every agent is looked up before any is stopped: a missing one fails the fault with none frozen.
    const agents = appHosts(lab).map((host) => labProcess(lab, `${host}-agent`).name);
    for (const agent of agents) signal(lab, agent, 'SIGSTOP');
    say(`froze ${agents.join(', ')}`);
    return async () => {
      for (const agent of agents) signal(lab, agent, 'SIGCONT');
    };
  },
};
