import type { Fault } from './fault.ts';
import { setAppFault } from './support.ts';

export const slow: Fault = {
  name: 'slow',
  summary: 'the target answers every page after 1.5 s (demo app fault switch; its health endpoint stays fast)',
  async inject({ target }) {
    await setAppFault(target, 'mode=slow&ms=1500');
    return () => setAppFault(target, 'mode=none');
  },
};
