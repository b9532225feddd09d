import type { Fault } from './fault.ts';
import { restart, signal, waitGone } from './support.ts';

export const crash: Fault = {
  name: 'crash',
  summary: "kill -9 the target's app; restarted when the fault ends",
  async inject({ lab, target }) {
    signal(lab, target, 'SIGKILL');
    await waitGone(lab, target);
    return () => restart(lab, target);
  },
};
