import type { Fault } from './fault.ts';
import { restart, signal, waitGone } from './support.ts';

export const consulDown: Fault = {
  name: 'consul-down',
  summary: 'stop the Consul server on infra, the one the balancer asks (the target is ignored); started again when the fault ends',
  async inject({ lab }) {
    signal(lab, 'infra-consul', 'SIGTERM');
    await waitGone(lab, 'infra-consul');
    return () => restart(lab, 'infra-consul');
  },
};
