import type { Fault } from './fault.ts';
import { hangApp, setAppFault } from './support.ts';

export const hungBusy: Fault = {
  name: 'hung-busy',
  summary: "the target's app spins in a busy loop for good (demo app mode=busy): the drill lasts until its agent heals it; the revert kills an app still spinning",
  lastsUntilHealed: true,
  async inject({ lab, target }) {
    return hangApp(lab, target, async () => {
      await setAppFault(target, 'mode=busy');
      return () => undefined;
    });
  },
};
