import { signalAndRestart } from './support.ts';

export const stop = signalAndRestart('stop', "SIGTERM the target's app (graceful drain, its agent still running); restarted when the fault ends", (target) => target, 'SIGTERM');
