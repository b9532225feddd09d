import type { Fault } from './fault.ts';
import { holdDown, restart, signal, waitGone } from './support.ts';

export const scaleIn: Fault = {
  name: 'scale-in',
  summary: 'take the target out for good, the way an operator would: SIGTERM its agent (drain, deregister), then its app; both back when the fault ends',
  async inject({ lab, target }) {
    signal(lab, `${target}-agent`, 'SIGTERM');
    await waitGone(lab, `${target}-agent`);
    holdDown(lab, target);
    signal(lab, target, 'SIGTERM');
    await waitGone(lab, target);
    return async () => {
      await restart(lab, target);
      await restart(lab, `${target}-agent`);
    };
  },
};
