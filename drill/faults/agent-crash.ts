import { signalAndRestart } from './support.ts';

export const agentCrash = signalAndRestart('agent-crash', "kill -9 the target's agent (the app keeps running; Consul drops it when the TTL expires); restarted when the fault ends", (target) => `${target}-agent`, 'SIGKILL');
