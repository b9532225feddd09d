import { signalAndRestart } from './support.ts';

export const agentStop = signalAndRestart('agent-stop', "SIGTERM the target's agent: maintenance, drain, deregistration; restarted when the fault ends", (target) => `${target}-agent`, 'SIGTERM');
