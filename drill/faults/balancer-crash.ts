import { balancerProcess } from '../../lab/netns-lab.ts';
import type { Fault } from './fault.ts';
import { activeBalancerHost, restart, signal, waitGone } from './support.ts';

export const balancerCrash: Fault = {
  name: 'balancer-crash',
  summary: 'kill -9 the balancer that holds the virtual address (lab up --balancers 2; the target is ignored); restarted when the fault ends',
  async inject({ lab, say, setTarget }) {
    const holder = activeBalancerHost(lab);
    setTarget?.(holder);
    const name = balancerProcess(holder);
    say(`the virtual address is on ${holder}: killing its balancer`);
    signal(lab, name, 'SIGKILL');
    await waitGone(lab, name);
    return () => restart(lab, name);
  },
};
