import type { Fault } from './fault.ts';
import { killWithRestarter, restart, signal, waitGone } from './support.ts';

export const hostCrash: Fault = {
  name: 'host-crash',
  summary: 'kill -9 every process of the target host at once (app, agent, its Consul server or client); all restarted when the fault ends',
  async inject({ lab, target }) {
    const names = [target, `${target}-agent`, `${target}-consul`];
    // The app's restarter dies with the host (systemd does not outlive its host either).
    killWithRestarter(lab, target);
    for (const name of names) signal(lab, name, 'SIGKILL');
    for (const name of names) await waitGone(lab, name);
    return async () => {
      await restart(lab, `${target}-consul`);
      await restart(lab, target);
      await restart(lab, `${target}-agent`);
    };
  },
};
