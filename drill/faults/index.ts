// Every fault a drill can inject, by name.
import { agentCrash } from './agent-crash.ts';
import { agentStop } from './agent-stop.ts';
import { agentsFrozen } from './agents-frozen.ts';
import { agentsTokensRevoked } from './agents-tokens-revoked.ts';
import { balancerCrash } from './balancer-crash.ts';
import { balancerHostCrash } from './balancer-host-crash.ts';
import { balancerReload } from './balancer-reload.ts';
import { balancerRestart } from './balancer-restart.ts';
import { consulDown } from './consul-down.ts';
import { crash } from './crash.ts';
import { errors } from './errors.ts';
import type { Fault } from './fault.ts';
import { hang } from './hang.ts';
import { hostCrash } from './host-crash.ts';
import { hungAcceptQueue } from './hung-accept-queue.ts';
import { hungBusy } from './hung-busy.ts';
import { hungStopped } from './hung-stopped.ts';
import { partition } from './partition.ts';
import { reset } from './reset.ts';
import { scaleIn } from './scale-in.ts';
import { scaleOut } from './scale-out.ts';
import { slow } from './slow.ts';
import { slowloris } from './slowloris.ts';
import { stop } from './stop.ts';

export const FAULTS: readonly Fault[] = [crash, hang, stop, slow, errors, agentCrash, agentStop, consulDown, partition, reset, hostCrash, scaleOut, scaleIn, slowloris, agentsFrozen, agentsTokensRevoked, hungStopped, hungBusy, hungAcceptQueue];

/** Faults of the front door: they need the balancer pair (`lab up --balancers 2`). */
export const PAIR_FAULTS: readonly Fault[] = [balancerCrash, balancerHostCrash];

/** Faults of the single balancer host, run under its socket keeper (the lab without --balancers 2). */
export const SINGLE_BALANCER_FAULTS: readonly Fault[] = [balancerReload, balancerRestart];

/** Every fault, whatever lab it needs. */
export const ALL_FAULTS: readonly Fault[] = [...FAULTS, ...PAIR_FAULTS, ...SINGLE_BALANCER_FAULTS];

export function findFault(name: string): Fault | undefined {
  return ALL_FAULTS.find((f) => f.name === name);
}
