// Catches a frozen instance (SIGSTOP, a deadlock, a GC storm) in well under a
// second, without waiting for its agent, Consul or the response timeout.
// Suspicion: its oldest unanswered request is older than `stallAfterMs` and
// no response at all came from it in that time. Confirmation: its health
// path does not answer within `probeTimeoutMs`. Only then is it ejected —
// a slow endpoint on a responsive instance is left alone.
import type { Instance } from '../../shared/instance.ts';
import type { Logger } from '../../shared/logger.ts';
import type { InstanceStates } from './instance-state.ts';
import { answersHealthy } from './readmission.ts';
import type { RoutingTable } from '../discovery/routing-table.ts';

export interface StallDetectorOptions {
  stallAfterMs: number;
  probeTimeoutMs: number;
  states: InstanceStates;
  table: () => RoutingTable;
  oldestUnanswered: (id: string) => number | undefined;
  onStalled: (instance: Instance, message: string) => void;
  logger: Logger;
  now?: () => number;
}

export function startStallDetector(options: StallDetectorOptions): { stop(): void } {
  const now = options.now ?? Date.now;
  const probing = new Set<string>();
  /** Instances whose probe answered: not suspected again until they answer a request. */
  const cleared = new Map<string, number>();
  const timer = setInterval(() => {
    const t = now();
    for (const instance of options.table().instances) {
      const state = options.states.get(instance.id);
      if (!state || state.ejected || probing.has(instance.id)) continue;
      const oldest = options.oldestUnanswered(instance.id);
      if (oldest === undefined || t - oldest < options.stallAfterMs || t - state.lastAnsweredAt < options.stallAfterMs) continue;
      if ((cleared.get(instance.id) ?? -1) === state.lastAnsweredAt) continue;
      probing.add(instance.id);
      const waitedMs = t - oldest;
      void answersHealthy(instance, options.probeTimeoutMs).then((healthy) => {
        probing.delete(instance.id);
        if (healthy) {
          cleared.set(instance.id, state.lastAnsweredAt);
          options.logger.info({ instance: instance.id, waitedMs }, 'slow requests, but the instance answers its health probe: left in rotation');
          return;
        }
        options.onStalled(instance, `no answer for ${now() - oldest} ms and health probe silent for ${options.probeTimeoutMs} ms`);
      });
    }
  }, Math.max(20, Math.min(100, options.stallAfterMs / 4)));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
