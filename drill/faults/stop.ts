import type { Fault } from './fault.ts';
import { restart, signal, waitGone } from './support.ts';

export const stop: Fault = {
  name: 'stop',
  summary: "SIGTERM the target's app (graceful drain, its agent still running); restarted when the fault ends",
  async inject({ lab, target }) {
    signal(lab, target, 'SIGTERM');
    await waitGone(lab, target);
    return () => restart(lab, target);
  },
};
