import type { Fault } from './fault.ts';
import { setAppFault } from './support.ts';

export const errors: Fault = {
  name: 'errors',
  summary: 'the target answers every page with HTTP 500 (demo app fault switch)',
  async inject({ target }) {
    await setAppFault(target, 'mode=errors&rate=1');
    return () => setAppFault(target, 'mode=none');
  },
};
