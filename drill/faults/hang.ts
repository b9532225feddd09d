import type { Fault } from './fault.ts';
import { signal } from './support.ts';

export const hang: Fault = {
  name: 'hang',
  summary: "SIGSTOP the target's app (it accepts connections, answers nothing); SIGCONT when the fault ends",
  async inject({ lab, target }) {
    signal(lab, target, 'SIGSTOP');
    return async () => signal(lab, target, 'SIGCONT');
  },
};
