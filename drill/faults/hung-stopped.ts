import type { Fault } from './fault.ts';
import { hangApp, signal } from './support.ts';

export const hungStopped: Fault = {
  name: 'hung-stopped',
  summary: "SIGSTOP the target's app and never resume it: the drill lasts until its agent heals it (kills it; the lab's restarter starts it again); the revert kills an app still stopped",
  lastsUntilHealed: true,
  async inject({ lab, target }) {
    return hangApp(lab, target, async () => {
      signal(lab, target, 'SIGSTOP');
      return () => undefined;
    });
  },
};
