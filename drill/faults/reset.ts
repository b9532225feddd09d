import type { Fault } from './fault.ts';
import { blockInfra, unblock } from './support.ts';

export const reset: Fault = {
  name: 'reset',
  summary: 'answer every TCP packet between infra and the target host with a reset (nftables reject)',
  async inject({ lab, target }) {
    blockInfra(lab, target, 'reject with tcp reset');
    return async () => unblock(lab, target);
  },
};
