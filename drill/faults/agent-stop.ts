import type { Fault } from './fault.ts';
import { restart, signal, waitGone } from './support.ts';

export const agentStop: Fault = {
  name: 'agent-stop',
  summary: "SIGTERM the target's agent: maintenance, drain, deregistration; restarted when the fault ends",
  async inject({ lab, target }) {
    signal(lab, `${target}-agent`, 'SIGTERM');
    await waitGone(lab, `${target}-agent`);
    return () => restart(lab, `${target}-agent`);
  },
};
