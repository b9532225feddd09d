import type { Fault } from './fault.ts';
import { blockInfra, unblock } from './support.ts';

export const partition: Fault = {
  name: 'partition',
  summary: 'drop every packet between infra and the target host (nftables in the host; a blackhole)',
  async inject({ lab, target }) {
    blockInfra(lab, target, 'drop');
    return async () => unblock(lab, target);
  },
};
