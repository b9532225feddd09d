import { forgetAppHost, startAppHost } from '../../lab/netns-lab.ts';
import type { Fault } from './fault.ts';
import { signal, waitGone } from './support.ts';

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
      for (const proc of [name, `${name}-consul`]) {
        signal(lab, proc, proc.endsWith('consul') ? 'SIGINT' : 'SIGTERM'); // SIGINT: the Consul client leaves the cluster
        await waitGone(lab, proc).catch(() => signal(lab, proc, 'SIGKILL'));
      }
      forgetAppHost(lab, name);
    };
  },
};
