import type { Fault } from './fault.ts';
import { restart, signal, waitGone } from './support.ts';

export const agentCrash: Fault = {
  name: 'agent-crash',
  summary: "kill -9 the target's agent (the app keeps running; Consul drops it when the TTL expires); restarted when the fault ends",
  async inject({ lab, target }) {
    signal(lab, `${target}-agent`, 'SIGKILL');
    await waitGone(lab, `${target}-agent`);
    return () => restart(lab, `${target}-agent`);
  },
};
