import { forgetAppHost, startAppHost } from '../../lab/netns-lab.ts';
import type { Fault } from './fault.ts';
import { signal, stopForGood, waitGone } from './support.ts';

export const scaleOut: Fault = {
  name: 'scale-out',
  summary: 'add a new app host (the next free appN: app, agent, Consul client) under load; removed gracefully when the fault ends',
  async inject({ lab, say, setTarget }) {
    let n = 1;
    while (lab.hosts[`app${n}`]) n += 1;
    const name = `app${n}`;
    setTarget?.(name);
    await startAppHost(lab, name, say);
    return async () => {
      signal(lab, `${name}-agent`, 'SIGTERM');
      await waitGone(lab, `${name}-agent`);
      // SIGINT: the Consul client leaves the cluster; the app's restarter stops it, then itself.
      await stopForGood(lab, name, 'SIGTERM');
      await stopForGood(lab, `${name}-consul`, 'SIGINT');
      forgetAppHost(lab, name);
    };
  },
};
