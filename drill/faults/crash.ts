import { signalAndRestart } from './support.ts';

export const crash = signalAndRestart('crash', "kill -9 the target's app; restarted when the fault ends", (target) => target, 'SIGKILL');
